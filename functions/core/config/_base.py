"""Shared base for config sections: strict keys, kebab- or snake-case accepted."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Section(BaseModel):
    """Unknown keys are errors (a typo must not silently do nothing)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

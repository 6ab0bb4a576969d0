"""How the GPU tier's Modal objects are named: one rule for ``gpu_tier/app.py`` (which creates
them), the Modal control adapter (which looks them up) and tierup.toml's ``base-url`` pattern.

Modal serves a web function at ``https://{workspace}--{app}-{function}.modal.run``. The app is
named after the project and each route's function ``gpu-{route}``, so project ``tierup`` serves
route ``chat`` at ``https://{workspace}--tierup-gpu-chat.modal.run``, which is what
``base-url = "https://{workspace}--tierup-gpu-{route}.modal.run/v1"`` expands to. Modal
lowercases and shortens (with a hash) labels that are not plain DNS labels of at most 63
characters; ``gpu_route_problem`` refuses such routes so that the pattern always holds.

No I/O here.
"""

from __future__ import annotations

import re

#: a DNS label's limit; Modal truncates longer ``{app}-{function}`` labels and appends a hash
MAX_WEB_LABEL_CHARS = 63
_LABEL = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")


def gpu_app_name(project: str) -> str:
    return project


def gpu_function_name(route: str) -> str:
    return f"gpu-{route}"


def gpu_web_label(project: str, route: str) -> str:
    """The host label before ``.modal.run`` (after ``{workspace}--``)."""
    return f"{gpu_app_name(project)}-{gpu_function_name(route)}"


def gpu_route_problem(project: str, route: str) -> str | None:
    """Why a route's GPU function would not get the predictable URL, or None if it will."""
    if not _LABEL.match(route):
        return "a GPU route's name must be lowercase letters, digits and single hyphens (it is part of a URL)"
    label = gpu_web_label(project, route)
    if len(label) > MAX_WEB_LABEL_CHARS:
        return f"{label!r} is longer than {MAX_WEB_LABEL_CHARS} characters, so Modal would shorten its URL"
    return None

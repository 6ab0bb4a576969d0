"""pydantic's validation errors as OpenAI's 400: one line, and the offending field as ``param``
in OpenAI's own notation (``messages[0].content[1].image_url.url``)."""

from __future__ import annotations

from pydantic import ValidationError

#: loc entries pydantic adds for the branches of a union, which are not field names
_TYPE_NAMES = frozenset(("str", "int", "float", "bool", "dict", "list", "none", "bytes"))


def _is_branch(part: str) -> bool:
    return "[" in part or part in _TYPE_NAMES or part.startswith(("function-", "literal"))


def param_path(loc: tuple) -> str | None:
    """``('messages', 0, 'content', 'list[tagged-union[...]]', 1, 'image_url', 'image_url')`` ->
    ``messages[0].content[1].image_url``."""
    out = ""
    after_tagged_union_index = False
    skip_tag = False
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
            skip_tag = after_tagged_union_index
            after_tagged_union_index = False
            continue
        if skip_tag:  # a tagged union names the branch (the tag's value) after the index
            skip_tag = False
            continue
        if _is_branch(part):
            after_tagged_union_index = "tagged-union" in part
            continue
        out += f".{part}" if out else part
    return out or None


def validation_message(exc: ValidationError) -> tuple[str, str | None]:
    """A one-line message naming the offending field, and that field as OpenAI's ``param``.

    Of several errors (one per branch of a union) the deepest is the one that says what is wrong.
    """
    errors = exc.errors(include_url=False)
    first = errors[0]
    if first["type"] == "json_invalid":
        return f"request body is not valid JSON: {first['msg']}", None
    if first["type"] == "model_type" and not first["loc"]:
        return "request body must be a JSON object", None
    deepest = max(errors, key=lambda error: len(error["loc"]))
    param = param_path(deepest["loc"])
    return (f"{param}: {deepest['msg']}" if param else deepest["msg"]), param

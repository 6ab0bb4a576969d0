"""DynamoDB number attributes from Python floats.

``repr(1e-08)`` is ``'1e-08'``: exponent notation that some DynamoDB implementations turn into
values like ``0E-8`` after arithmetic and then reject. Numbers go over the wire in plain
fixed-point notation instead, with 12 decimals (far below a micro-dollar).
"""

from __future__ import annotations


def number(value: float) -> dict:
    """``{"N": "..."}`` for ``value`` in fixed-point notation."""
    text = f"{float(value):.12f}".rstrip("0").rstrip(".")
    return {"N": "0" if text in ("", "-0") else text}

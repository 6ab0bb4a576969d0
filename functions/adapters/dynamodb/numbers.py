"""DynamoDB number attributes: the one formatter for every number tierup writes.

``repr(2e-08)`` is ``'2e-08'``: exponent notation that some DynamoDB implementations (moto)
cannot add to, or turn into values like ``0E-8`` after arithmetic and then reject. Every number
goes over the wire in plain fixed-point notation instead: integers exactly, floats with 12
decimals (far below a micro-dollar; smaller magnitudes are written as 0). NaN and infinity
have no DynamoDB form and are refused here, before a half-applied write.
"""

from __future__ import annotations

import math

#: decimals kept of a float
DECIMALS = 12


def number_text(value: float | int) -> str:
    """``value`` as DynamoDB number text, never in exponent notation."""
    if isinstance(value, bool):
        raise TypeError("a bool is not a DynamoDB number")
    if isinstance(value, int):
        return str(value)
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{value} cannot be stored as a DynamoDB number")
    text = f"{value:.{DECIMALS}f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def number(value: float | int) -> dict:
    """``{"N": "..."}`` for ``value`` (see ``number_text``)."""
    return {"N": number_text(value)}

"""DynamoDB number attributes: the one formatter for every number tierup writes.

``repr(2e-08)`` is ``'2e-08'``: exponent notation that some DynamoDB implementations (moto)
cannot add to, or turn into values like ``0E-8`` after arithmetic and then reject. Every number
goes over the wire in plain fixed-point notation instead: integers exactly, floats with 12
decimals (far below a micro-dollar; smaller magnitudes are written as 0). NaN and infinity
have no DynamoDB form and are refused here, before a half-applied write.
"""

from __future__ import annotations

import math
from decimal import ROUND_HALF_EVEN, Context, Decimal

#: decimals kept of a float
DECIMALS = 12
_STEP = Decimal(1).scaleb(-DECIMALS)
#: room for any float's integer part (up to 309 digits) plus the decimals
_CONTEXT = Context(prec=400, rounding=ROUND_HALF_EVEN)


def number_text(value: float | int) -> str:
    """``value`` as DynamoDB number text, never in exponent notation."""
    if isinstance(value, bool):
        raise TypeError("a bool is not a DynamoDB number")
    if isinstance(value, int):
        return str(value)
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{value} cannot be stored as a DynamoDB number")
    # repr is the shortest text that reads back as the same float (no binary noise such as
    # 1795000000.12299990654); Decimal turns it into fixed point, rounded to DECIMALS
    text = format(Decimal(repr(value)).quantize(_STEP, context=_CONTEXT), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def number(value: float | int) -> dict:
    """``{"N": "..."}`` for ``value`` (see ``number_text``)."""
    return {"N": number_text(value)}

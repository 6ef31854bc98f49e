"""Money: integer fen (分, 1/100 yuan) in every event.

A float amount can be ``Infinity`` or ``NaN``, which a ``ge=0`` bound lets through and JSON encodes as
``null`` (a refund that reads back as no refund), and it cannot hold 0.10 yuan exactly. :data:`Fen` is
a strict integer: JSON floats (``100.0``, ``1e3``, ``Infinity``), strings and booleans are refused, not
converted.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

#: The largest amount an event may carry: ¥100,000,000.00. No complaint comes near it, and it stays far
#: below 2**53, so consumers that read JSON numbers as doubles (JavaScript) read every amount exactly.
MAX_FEN = 10_000_000_000

Fen = Annotated[int, Field(
    strict=True, ge=0, le=MAX_FEN,
    description="An amount of money in fen (分, 1/100 CNY): a whole number from 0 to 10,000,000,000.",
)]

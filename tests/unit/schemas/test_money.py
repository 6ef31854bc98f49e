"""Money is integer fen (issue 11): a refund of Infinity, NaN, a fraction or a negative amount is refused,
not encoded as null and read back as no refund."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import get_args

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from pydantic import BaseModel, TypeAdapter, ValidationError

from complaint_stream.schemas import ComplaintResolved, DecodeError, decode, wrap
from complaint_stream.schemas.money import MAX_FEN, Fen

FEN = TypeAdapter(Fen)
NOW = datetime(2026, 11, 28, 8, 0, tzinfo=UTC)


def resolved(resolution: dict[str, object] | None = None, **overrides: object) -> dict[str, object]:
    """A resolved complaint; ``overrides`` go into its resolution (a refund of the VAS charge)."""
    return {"complaint_id": "CMP20261128-AAAAAAAAAAAA", "customer_key": "0f" * 16, "status": "resolved",
            "category": "billing", "resolved_at": NOW.isoformat(),
            "resolution": {"code": "refund", "note": "refunded the VAS charge", **(resolution or {}), **overrides}}


def models_within(annotation: object, seen: set[type[BaseModel]]) -> None:
    """Every pydantic model reachable from a field's annotation (nested models, tuples, unions)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        if annotation not in seen:
            seen.add(annotation)
            for field in annotation.model_fields.values():
                models_within(field.annotation, seen)
        return
    for arg in get_args(annotation):
        models_within(arg, seen)


def test_every_amount_field_of_every_event_is_fen():
    from complaint_stream.schemas import REGISTRY

    models: set[type[BaseModel]] = set()
    for cls in REGISTRY.values():
        models_within(cls, models)
    amounts = {(cls.__name__, name): field.annotation for cls in models
               for name, field in cls.model_fields.items()
               if any(word in name for word in ("amount", "refund", "fen", "price", "fee", "charge", "cny", "yuan",
                                                "compensation"))}
    assert ("Resolution", "refund_fen") in amounts and ("Resolution", "compensation_fen") in amounts
    assert {where: annotation for where, annotation in amounts.items() if annotation not in (Fen, Fen | None)} == {}


@given(st.integers(min_value=0, max_value=MAX_FEN), st.integers(min_value=0, max_value=MAX_FEN))
def test_a_refund_in_fen_round_trips_through_json_unchanged(fen, compensation):
    event = ComplaintResolved.model_validate(resolved(refund_fen=fen, compensation_fen=compensation))
    back = decode(wrap(event, source="/t", subject=event.complaint_id).to_json_bytes(), [ComplaintResolved])
    assert back.data.refund_fen == fen and isinstance(back.data.refund_fen, int)  # read from the resolution
    assert back.data.resolution is not None and back.data.resolution.refund_fen == fen
    assert back.data.resolution.compensation_fen == compensation
    assert isinstance(back.data.resolution.compensation_fen, int)


@given(st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(max_value=-1),
                 st.integers(min_value=MAX_FEN + 1), st.booleans(), st.text(max_size=5),
                 st.decimals(allow_nan=True)))
@example(math.inf)
@example(math.nan)
@example(1.0)  # even a whole float: amounts are never floats
@example(-1)
def test_non_finite_fractional_negative_huge_and_non_integer_amounts_are_refused(value):
    with pytest.raises(ValidationError):
        FEN.validate_python(value)
    with pytest.raises(ValidationError):
        ComplaintResolved.model_validate(resolved(refund_fen=value))
    with pytest.raises(ValidationError):
        ComplaintResolved.model_validate(resolved(compensation_fen=value))


@pytest.mark.parametrize("literal", ["Infinity", "-Infinity", "NaN", "1e3", "100.0", "100.5", "-1", '"100"', "true",
                                     "10000000001"])
def test_a_record_with_such_an_amount_is_dead_lettered_not_read_as_no_refund(literal):
    event = ComplaintResolved.model_validate(resolved(refund_fen=100))
    raw = wrap(event, source="/t", subject=event.complaint_id).to_json_bytes().replace(b'"refund_fen":100',
                                                                                      f'"refund_fen":{literal}'.encode())
    assert literal.encode() in raw
    with pytest.raises(DecodeError) as info:
        decode(raw, [ComplaintResolved])
    assert info.value.fields[0].loc == "data.resolution.refund_fen"


def test_no_refund_is_null_and_zero_is_a_refund_of_nothing():
    assert ComplaintResolved.model_validate(resolved()).refund_fen is None
    no_resolution = {k: v for k, v in resolved().items() if k != "resolution"}
    assert ComplaintResolved.model_validate(no_resolution).refund_fen is None  # cancelled, say: no resolution
    zero = json.loads(ComplaintResolved.model_validate(resolved(refund_fen=0)).model_dump_json())
    assert zero["resolution"]["refund_fen"] == 0 and "refund_fen" not in zero  # a property, not a field


def test_fen_is_an_integer_from_0_to_max_in_the_json_schema():
    class Bill(BaseModel):
        amount: Fen

    schema = Bill.model_json_schema()["properties"]["amount"]
    assert (schema["type"], schema["minimum"], schema["maximum"]) == ("integer", 0, MAX_FEN)
    assert MAX_FEN < 2 ** 53  # exact in every JSON reader, JavaScript's doubles included

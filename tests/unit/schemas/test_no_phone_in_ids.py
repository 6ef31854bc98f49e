"""Ids of people, teams and departments, region names and customer keys never carry a phone number: they
are copied onto topics that hold no personal data (the case's public events, classifications, keys)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from complaint_stream.schemas import ComplaintAssigned, Note, Region, Resolution
from complaint_stream.schemas.events import ComplaintResolved

T = "2026-12-03T10:00:00+08:00"
FORMS = ["13812345678", "+8613812345678", "138 1234 5678", "138-1234-5678", "tel:13812345678"]


@pytest.mark.parametrize("form", FORMS)
def test_a_team_agent_or_author_that_reads_as_a_phone_number_is_refused(form):
    base = {"complaint_id": "CMP-1", "team": "billing-sz", "agent_id": "agent-7",
            "priority": "P3", "assigned_at": T, "respond_by": T, "resolve_by": T}
    assert ComplaintAssigned.model_validate(base).team == "billing-sz"
    for field in ("team", "agent_id"):
        with pytest.raises(ValidationError, match="reads as a phone number"):
            ComplaintAssigned.model_validate({**base, field: form})
    with pytest.raises(ValidationError, match="reads as a phone number"):
        Note(author=form, text="x", at=T)
    with pytest.raises(ValidationError, match="reads as a phone number"):
        Resolution(code="refund", responsible_department=f"dept {form}")


def test_ids_with_digits_that_are_no_phone_number_are_kept():
    for ok in ("agent-1024", "team-2026-12", "坐席0755", "sup-7", "GZ-NET-01"):
        assert Note(author=ok, text="x", at=T).author == ok


@pytest.mark.parametrize("form", FORMS[:4])
def test_a_region_name_that_reads_as_a_phone_number_is_refused(form):
    with pytest.raises(ValidationError, match="reads as a phone number"):
        Region(province="浙江省", city="杭州市", district=form)
    with pytest.raises(ValidationError, match="reads as a phone number"):
        Region(province=f"+86 {form}", city="广州市")
    assert Region(province="浙江省", city="杭州市", district="西湖区").district_code == "330106"


@pytest.mark.parametrize("key", ["13812345678", "k" * 32, "0F" * 16, "0f" * 15, "0f" * 17])
def test_a_customer_key_is_the_32_hex_digits_of_the_keyed_hash(key):
    with pytest.raises(ValidationError, match="customer_key"):
        ComplaintResolved.model_validate({"complaint_id": "CMP-1", "customer_key": key, "status": "closed",
                                          "category": "network", "priority": "P3", "channel": "app",
                                          "resolved_at": T, "received_at": T, "handling_seconds": 1})


@pytest.mark.parametrize("cid", ["13912345678", "139-1234-5678", "hotline.13912345678", "app.8613912345678",
                                 "CMP-139.1234.5678"])
def test_a_complaint_id_with_a_mobile_number_in_it_is_refused(cid):
    from pydantic import TypeAdapter

    from complaint_stream.schemas import ComplaintId

    with pytest.raises(ValidationError, match="mobile phone number"):
        TypeAdapter(ComplaintId).validate_python(cid)


@pytest.mark.parametrize("cid", ["HL-2026-000123", "hotline.2026-000123", "CMP20261201-ABCDEFGHIJKL",
                                 "CMP20261201-000000000001", "X-00013912345678"])
def test_complaint_ids_with_other_digits_are_kept(cid):
    from pydantic import TypeAdapter

    from complaint_stream.schemas import ComplaintId

    assert TypeAdapter(ComplaintId).validate_python(cid) == cid

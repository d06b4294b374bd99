"""Jurisdiction codes for data flows: ISO 3166-1 alpha-2 countries and territories, the ISO 3166-2
subdivisions of mainland China (CN-GD, ...), and Hong Kong, Macao and Taiwan by their own alpha-2
codes (HK, MO, TW; the ISO 3166-2 aliases CN-HK, CN-MO, CN-TW are accepted and normalised).

A flow is cross-border when it leaves one *customs area* for another: the mainland (CN and all its
CN-XX subdivisions), HK, MO, TW and every other country are separate areas. A code "covers" itself
and, for a country, its subdivisions (CN covers CN-GD).
"""

from __future__ import annotations

ISO_3166_1 = frozenset("""
AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY
BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK
FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR
IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK
ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM
PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF
TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW
""".split())

# ISO 3166-2:CN (2017 letter codes): provinces, autonomous regions and municipalities of the mainland.
CN_SUBDIVISIONS = {
    "CN-AH": "安徽 Anhui", "CN-BJ": "北京 Beijing", "CN-CQ": "重庆 Chongqing", "CN-FJ": "福建 Fujian",
    "CN-GD": "广东 Guangdong", "CN-GS": "甘肃 Gansu", "CN-GX": "广西 Guangxi", "CN-GZ": "贵州 Guizhou",
    "CN-HA": "河南 Henan", "CN-HB": "湖北 Hubei", "CN-HE": "河北 Hebei", "CN-HI": "海南 Hainan",
    "CN-HL": "黑龙江 Heilongjiang", "CN-HN": "湖南 Hunan", "CN-JL": "吉林 Jilin", "CN-JS": "江苏 Jiangsu",
    "CN-JX": "江西 Jiangxi", "CN-LN": "辽宁 Liaoning", "CN-NM": "内蒙古 Nei Mongol", "CN-NX": "宁夏 Ningxia",
    "CN-QH": "青海 Qinghai", "CN-SC": "四川 Sichuan", "CN-SD": "山东 Shandong", "CN-SH": "上海 Shanghai",
    "CN-SN": "陕西 Shaanxi", "CN-SX": "山西 Shanxi", "CN-TJ": "天津 Tianjin", "CN-XJ": "新疆 Xinjiang",
    "CN-XZ": "西藏 Xizang", "CN-YN": "云南 Yunnan", "CN-ZJ": "浙江 Zhejiang",
}
ALIASES = {"CN-HK": "HK", "CN-MO": "MO", "CN-TW": "TW"}

ALL_CODES = frozenset(ISO_3166_1 | set(CN_SUBDIVISIONS))


def normalise(code: object) -> str | None:
    """The canonical code, or None when `code` is not a known jurisdiction. Exact (upper-case) codes only."""
    if not isinstance(code, str):
        return None
    code = ALIASES.get(code, code)
    return code if code in ALL_CODES else None


def is_known(code: object) -> bool:
    return normalise(code) is not None


def country(code: str) -> str:
    return code.split("-", 1)[0]


def customs_area(code: str) -> str:
    """The area a flow crosses a border out of: the mainland is 'CN' (with its subdivisions)."""
    return country(code)


def is_cross_border(from_code: str, to_code: str) -> bool:
    return customs_area(from_code) != customs_area(to_code)


def covers(scope: str, code: str) -> bool:
    """`scope` is `code`, or the country `code` is a subdivision of."""
    return scope == code or ("-" not in scope and country(code) == scope)


def to_bytes8(code: str) -> bytes:
    """The on-chain form: ASCII, right-padded with zero bytes to 8 bytes."""
    raw = code.encode("ascii")
    if len(raw) > 8:
        raise ValueError(f"jurisdiction code {code!r} is longer than 8 bytes")
    return raw.ljust(8, b"\0")


def from_bytes8(raw: bytes) -> str:
    return bytes(raw).rstrip(b"\0").decode("ascii", "replace")

"""Jurisdiction codes for data flows: ISO 3166-1 alpha-2 countries and territories, the ISO 3166-2
subdivisions of mainland China (CN-GD, ...), and Hong Kong, Macao and Taiwan by their own alpha-2
codes (HK, MO, TW; the ISO 3166-2 aliases CN-HK, CN-MO, CN-TW are accepted and normalised), and
below the province, mainland prefecture-level cities by their GB/T 2260 six-digit administrative
division codes (440100 Guangzhou, 440600 Foshan; the first two digits are the province). The
cities listed are Guangdong's (the Greater Bay Area and its province); more are added to
``CN_CITIES`` as needed.

A flow is cross-border when it leaves one *customs area* for another: the mainland (CN and all its
CN-XX subdivisions), HK, MO, TW and every other country are separate areas. A code "covers" itself
and, for a country, its subdivisions (CN covers CN-GD).
"""

from __future__ import annotations

ISO_3166_1 = frozenset(
    """
AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY
BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK
FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR
IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK
ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM
PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF
TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW
""".split()
)

# ISO 3166-2:CN (2017 letter codes): provinces, autonomous regions and municipalities of the mainland.
CN_SUBDIVISIONS = {
    "CN-AH": "安徽 Anhui",
    "CN-BJ": "北京 Beijing",
    "CN-CQ": "重庆 Chongqing",
    "CN-FJ": "福建 Fujian",
    "CN-GD": "广东 Guangdong",
    "CN-GS": "甘肃 Gansu",
    "CN-GX": "广西 Guangxi",
    "CN-GZ": "贵州 Guizhou",
    "CN-HA": "河南 Henan",
    "CN-HB": "湖北 Hubei",
    "CN-HE": "河北 Hebei",
    "CN-HI": "海南 Hainan",
    "CN-HL": "黑龙江 Heilongjiang",
    "CN-HN": "湖南 Hunan",
    "CN-JL": "吉林 Jilin",
    "CN-JS": "江苏 Jiangsu",
    "CN-JX": "江西 Jiangxi",
    "CN-LN": "辽宁 Liaoning",
    "CN-NM": "内蒙古 Nei Mongol",
    "CN-NX": "宁夏 Ningxia",
    "CN-QH": "青海 Qinghai",
    "CN-SC": "四川 Sichuan",
    "CN-SD": "山东 Shandong",
    "CN-SH": "上海 Shanghai",
    "CN-SN": "陕西 Shaanxi",
    "CN-SX": "山西 Shanxi",
    "CN-TJ": "天津 Tianjin",
    "CN-XJ": "新疆 Xinjiang",
    "CN-XZ": "西藏 Xizang",
    "CN-YN": "云南 Yunnan",
    "CN-ZJ": "浙江 Zhejiang",
}
ALIASES = {"CN-HK": "HK", "CN-MO": "MO", "CN-TW": "TW"}

# GB/T 2260 province prefixes (the first two digits of an administrative division code)
GB2260_PROVINCES = {
    "11": "CN-BJ",
    "12": "CN-TJ",
    "13": "CN-HE",
    "14": "CN-SX",
    "15": "CN-NM",
    "21": "CN-LN",
    "22": "CN-JL",
    "23": "CN-HL",
    "31": "CN-SH",
    "32": "CN-JS",
    "33": "CN-ZJ",
    "34": "CN-AH",
    "35": "CN-FJ",
    "36": "CN-JX",
    "37": "CN-SD",
    "41": "CN-HA",
    "42": "CN-HB",
    "43": "CN-HN",
    "44": "CN-GD",
    "45": "CN-GX",
    "46": "CN-HI",
    "50": "CN-CQ",
    "51": "CN-SC",
    "52": "CN-GZ",
    "53": "CN-YN",
    "54": "CN-XZ",
    "61": "CN-SN",
    "62": "CN-GS",
    "63": "CN-QH",
    "64": "CN-NX",
    "65": "CN-XJ",
}
# GB/T 2260 prefecture-level cities (Guangdong's 21)
CN_CITIES = {
    "440100": "广州 Guangzhou",
    "440200": "韶关 Shaoguan",
    "440300": "深圳 Shenzhen",
    "440400": "珠海 Zhuhai",
    "440500": "汕头 Shantou",
    "440600": "佛山 Foshan",
    "440700": "江门 Jiangmen",
    "440800": "湛江 Zhanjiang",
    "440900": "茂名 Maoming",
    "441200": "肇庆 Zhaoqing",
    "441300": "惠州 Huizhou",
    "441400": "梅州 Meizhou",
    "441500": "汕尾 Shanwei",
    "441600": "河源 Heyuan",
    "441700": "阳江 Yangjiang",
    "441800": "清远 Qingyuan",
    "441900": "东莞 Dongguan",
    "442000": "中山 Zhongshan",
    "445100": "潮州 Chaozhou",
    "445200": "揭阳 Jieyang",
    "445300": "云浮 Yunfu",
}

ALL_CODES = frozenset(ISO_3166_1 | set(CN_SUBDIVISIONS) | set(CN_CITIES))


def normalise(code: object) -> str | None:
    """The canonical code, or None when `code` is not a known jurisdiction. Exact (upper-case) codes only."""
    if not isinstance(code, str):
        return None
    code = ALIASES.get(code, code)
    return code if code in ALL_CODES else None


def is_known(code: object) -> bool:
    return normalise(code) is not None


def country(code: str) -> str:
    return "CN" if code in CN_CITIES else code.split("-", 1)[0]


def province(code: str) -> str | None:
    """The mainland province (CN-XX) of a city or province code, else None."""
    if code in CN_CITIES:
        return GB2260_PROVINCES[code[:2]]
    return code if code in CN_SUBDIVISIONS else None


def customs_area(code: str) -> str:
    """The area a flow crosses a border out of: the mainland is 'CN' (with its subdivisions)."""
    return country(code)


def is_cross_border(from_code: str, to_code: str) -> bool:
    return customs_area(from_code) != customs_area(to_code)


def covers(scope: str, code: str) -> bool:
    """`scope` is `code`, the country `code` is in, or the province a city `code` is in."""
    if scope == code:
        return True
    if scope in CN_CITIES:
        return False
    return ("-" not in scope and country(code) == scope) or (
        scope in CN_SUBDIVISIONS and province(code) == scope
    )


def to_bytes8(code: str) -> bytes:
    """The on-chain form: ASCII, right-padded with zero bytes to 8 bytes."""
    raw = code.encode("ascii")
    if len(raw) > 8:
        raise ValueError(f"jurisdiction code {code!r} is longer than 8 bytes")
    return raw.ljust(8, b"\0")


def from_bytes8(raw: bytes) -> str:
    return bytes(raw).rstrip(b"\0").decode("ascii", "replace")

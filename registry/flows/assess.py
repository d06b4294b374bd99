"""Applying the rule tables to declarations and to a trace (docs/FORMAT.md §11.1–11.2). Pure functions.

*At declaration* (:func:`assess`): the flow's own facts plus the exporter's annual totals so far
give a :class:`~registry.flows.rules.Finding`. The registry refuses a declaration whose *own* facts
need more than its basis (core data; important data or a CIIO without an assessment; a single flow
over a threshold); when only the *sum* with the exporter's earlier flows crosses a threshold, the
declaration is accepted and flagged in the trace, because the count of people is an upper bound
(the same person may be in several flows, which the registry cannot see) and the regulator judges.

*In a trace* (:func:`rule_violations`): every mainland exporter's flows are counted again, in order
of declaration, per calendar year (China time); a flow whose running total needs more than its
basis is a violation, ``threshold_split`` when the flow alone would have been covered (several
flows under a threshold that together cross it: the violation names them all), else
``basis_insufficient``. Filing deadlines and assessment expiry are checked as well.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache

import holidays

from registry.flows import rules as R


@dataclass
class RuleFlow:
    """What the rules need of one flow (from the registry's declaration)."""

    flow_id: int
    exporter: str  # participant id
    exporter_name: str | None
    mainland_export: bool  # leaves the mainland customs area (the 2024 rules apply)
    from_j: str
    to_j: str
    declared_at: int
    rejected: bool
    pending: bool
    basis: str
    classification: str | None
    ciio: bool
    personal_information: bool
    subjects: int
    sensitive_subjects: int
    ground: str | None
    filing: dict | None
    zone: str | None = None  # a free-trade zone whose negative list applies (FORMAT.md §11.1)
    categories: list[str] = field(default_factory=list)

    def ftz(self) -> tuple[bool, bool]:
        """(leaves from a zone with a loaded negative list, one of its categories is on that list)."""
        z = R.zones().get(self.zone) if self.zone else None
        return (z is not None, bool(z.listed(self.categories)) if z else False)

    def counted(self) -> bool:
        in_ftz, listed = self.ftz()
        return R.counted(self.ground, in_ftz and not listed)


@dataclass
class ExporterYear:
    exporter: str
    name: str | None
    year: int
    subjects: int = 0
    sensitive_subjects: int = 0
    flows: list[int] = field(default_factory=list)

    def public(self, table: R.RuleTable) -> dict:
        facts = {"annualSubjects": self.subjects, "annualSensitiveSubjects": self.sensitive_subjects}
        return {
            "exporter": self.exporter,
            "exporterName": self.name,
            "year": self.year,
            "subjects": self.subjects,
            "sensitiveSubjects": self.sensitive_subjects,
            "flows": self.flows,
            "thresholds": [
                {
                    "id": t["id"],
                    "fact": t["fact"],
                    "gte": t["gte"],
                    "requires": t["requires"],
                    "value": facts[t["fact"]],
                    "reached": facts[t["fact"]] >= t["gte"],
                    "source": table.source(t["source"]),
                }
                for t in table.raw["thresholds"]
            ],
        }


def facts_for(f: RuleFlow, annual_subjects: int, annual_sensitive: int) -> dict:
    in_ftz, listed = f.ftz()
    return R.flow_facts(
        classification=f.classification,
        ciio=f.ciio,
        personal_information=f.personal_information,
        ground=f.ground,
        annual_subjects=annual_subjects,
        annual_sensitive=annual_sensitive,
        in_ftz=in_ftz,
        ftz_listed=listed,
    )


def assess(
    table: R.RuleTable, f: RuleFlow, before_subjects: int, before_sensitive: int
) -> tuple[R.Finding, R.Finding]:
    """(the finding on the flow's own counts, the finding on the running annual totals with it)."""
    own_s, own_ss = (f.subjects, f.sensitive_subjects) if f.counted() else (0, 0)
    alone = table.evaluate(facts_for(f, own_s, own_ss), f.basis)
    total = table.evaluate(facts_for(f, before_subjects + own_s, before_sensitive + own_ss), f.basis)
    return alone, total


def gba_problem(table: R.RuleTable, f: RuleFlow) -> str | None:
    """Why the GBA standard contract cannot carry this flow, or None."""
    g = table.raw["gba"]
    if f.basis != g["basis"]:
        return None
    if f.classification in ("important", "core"):
        return "the GBA standard contract never carries important data"
    mainland, partners = set(g["mainland"]), set(g["partners"])
    if not ((f.from_j in mainland and f.to_j in partners) or (f.from_j in partners and f.to_j in mainland)):
        return (
            f"the GBA standard contract covers only the nine mainland GBA cities ({', '.join(g['mainland'])}) "
            f"↔ {' / '.join(g['partners'])}, not {f.from_j} → {f.to_j}"
        )
    return None


@lru_cache(maxsize=32)
def _mainland_calendar(year: int) -> holidays.HolidayBase:
    return holidays.country_holidays("CN", years=year)


def is_working_day(d: date) -> bool:
    """A mainland working day: Monday–Friday except the public holidays, plus the weekend days the
    State Council's yearly notice makes working days (调休), as the ``holidays`` package records
    them. For a year whose notice the installed package does not yet carry, the holidays known by
    rule are still left out but weekend make-up days are not counted (upgrade ``holidays``)."""
    return bool(_mainland_calendar(d.year).is_working_day(d))


def add_working_days(start: date, n: int) -> date:
    """`n` mainland working days after `start` (:func:`is_working_day`)."""
    d = start
    while n > 0:
        d += timedelta(days=1)
        if is_working_day(d):
            n -= 1
    return d


def filing_problems(table: R.RuleTable, f: RuleFlow, now: int) -> list[tuple[str, str, dict]]:
    """(kind, message, details) for a missed filing deadline or an expired assessment."""
    out: list[tuple[str, str, dict]] = []
    fl = f.filing or {}
    level = table.raw["bases"].get(f.basis)
    if not fl or f.rejected:
        return out
    today = datetime.fromtimestamp(now, R.CHINA_TIME).date()
    declared = datetime.fromtimestamp(f.declared_at, R.CHINA_TIME).date()
    if f.basis in ("standard-contract", "gba-standard-contract"):
        days = (
            table.raw["gba"]["filingWorkingDays"]
            if f.basis == "gba-standard-contract"
            else table.raw["filing"]["contractWorkingDays"]
        )
        due = add_working_days(date.fromisoformat(fl["effectiveFrom"]), days)
        filed = date.fromisoformat(fl["filedAt"]) if fl.get("filedAt") else None
        if (filed is None and today > due) or (filed is not None and filed > due):
            out.append(
                (
                    "filing_overdue",
                    f"flow {f.flow_id}'s standard contract (in effect {fl['effectiveFrom']}) was due for filing by "
                    f"{due.isoformat()} ({days} working days)"
                    + (f"; filed {filed.isoformat()}" if filed else "; not filed"),
                    {
                        "effectiveFrom": fl["effectiveFrom"],
                        "due": due.isoformat(),
                        "filedAt": fl.get("filedAt"),
                    },
                )
            )
    if level == "assessment" and fl.get("validUntil"):
        until = date.fromisoformat(fl["validUntil"])
        if declared > until or (f.pending and today > until):
            out.append(
                (
                    "assessment_expired",
                    f"flow {f.flow_id} relies on a security assessment valid until {until.isoformat()}",
                    {"validUntil": until.isoformat(), "reference": fl.get("reference")},
                )
            )
    return out


def rule_violations(
    table: R.RuleTable, flows: list[RuleFlow], now: int
) -> tuple[dict[int, dict], list[tuple[int, str, str, dict]], list[dict]]:
    """({flow id: finding on its running total}, [(flow id, kind, message, details)], exporter-year totals)."""
    findings: dict[int, dict] = {}
    problems: list[tuple[int, str, str, dict]] = []
    years: dict[tuple[str, int], ExporterYear] = {}
    for f in sorted(flows, key=lambda x: (x.declared_at, x.flow_id)):
        for kind, msg, det in filing_problems(table, f, now):
            problems.append((f.flow_id, kind, msg, det))
        if not f.mainland_export:
            continue
        y = years.setdefault(
            (f.exporter, R.year_of(f.declared_at)),
            ExporterYear(f.exporter, f.exporter_name, R.year_of(f.declared_at)),
        )
        alone, total = assess(table, f, y.subjects, y.sensitive_subjects)
        findings[f.flow_id] = total.as_dict()
        if f.rejected:
            continue
        if f.counted() and f.personal_information:
            y.subjects += f.subjects
            y.sensitive_subjects += f.sensitive_subjects
            y.flows.append(f.flow_id)
        gba = gba_problem(table, f)
        if gba:
            problems.append(
                (f.flow_id, "gba_scope", f"flow {f.flow_id}: {gba}", {"from": f.from_j, "to": f.to_j})
            )
        if total.covered:
            continue
        rule = table.rule(total.rule)
        details = {
            "rule": total.rule,
            "requires": total.requires,
            "basis": f.basis,
            "source": total.source,
            "annualSubjects": y.subjects,
            "annualSensitiveSubjects": y.sensitive_subjects,
        }
        if alone.covered:
            details["flows"] = list(y.flows)
            problems.append(
                (
                    f.flow_id,
                    "threshold_split",
                    f"flows {', '.join(map(str, y.flows))} of one exporter total {y.subjects:,} people "
                    f"({y.sensitive_subjects:,} sensitive) in {y.year}: together they need "
                    f"{table.raw['levelNames'][total.requires]['en']} ({rule['source']['ref']} art. "
                    f"{rule['source']['article']}), not {f.basis}",
                    details,
                )
            )
        else:
            problems.append(
                (
                    f.flow_id,
                    "basis_insufficient",
                    f"flow {f.flow_id} needs {table.raw['levelNames'][total.requires]['en']} "
                    f"(rule {total.rule}, art. {rule['source']['article']}), not {f.basis}",
                    details,
                )
            )
    totals = [y.public(table) for y in sorted(years.values(), key=lambda y: (y.exporter, y.year))]
    return findings, problems, totals


def from_declaration(
    flow_id: int,
    exporter: str,
    d: dict,
    declared_at: int,
    decision_rejected: bool,
    pending: bool,
    classification: str | None,
    mainland_export: bool,
) -> RuleFlow:
    return RuleFlow(
        flow_id=flow_id,
        exporter=exporter,
        exporter_name=d["exporter"]["name"],
        mainland_export=mainland_export,
        from_j=d["fromJurisdiction"],
        to_j=d["toJurisdiction"],
        declared_at=declared_at,
        rejected=decision_rejected,
        pending=pending,
        basis=d["legalBasis"],
        classification=classification,
        ciio=bool(d.get("exporterIsCiio")),
        personal_information=d["personalInformation"],
        subjects=d["personalInformationSubjects"],
        sensitive_subjects=d.get("sensitivePersonalInformationSubjects", 0),
        ground=d.get("exemptionGround"),
        filing=d.get("filing"),
        zone=d.get("freeTradeZone"),
        categories=list(d.get("dataCategories") or []),
    )


def now_unix() -> int:
    return int(datetime.now(UTC).timestamp())

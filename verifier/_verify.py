"""``verify`` and the batch-friendly :class:`Verifier` (DESIGN.md "Verification", FORMAT.md §7)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from verifier._holder import subject_hash_of
from verifier._internal.accelerator import module as _accelerator
from verifier._internal.disclosure import (
    SUITE_HASHES,
    IntegrityFailure,
    _hex32,
    accelerated_target_hash,
    digests_from_walk,
    leaf_entry,
    leaves_of,
    recompute_leaves,
    redacted_ancestry,
    target_hash_of,
    walk_document,
)
from verifier._internal.keccak import keccak256 as keccak
from verifier._internal.merkle import leaf_hash
from verifier._internal.suites import batch_digest, verify_batch_signature
from verifier._jsonio import MAX_DOCUMENT_BYTES, loads_strict
from verifier._proof import ParsedProof, parse_proof
from verifier._proof_package import HeaderTrust, OperatorHeaderTrust, ProvenHeader, ProvenState
from verifier._result import Check, CredentialSummary, VerificationResult
from verifier._schema import (
    CREDENTIAL_TYPES,
    E_LICENCE_TYPES,
    TYPE_NAMES,
    fast_validator_for,
    holder_problems,
    licence_metadata_problems,
    parse_datetime,
    schema_errors,
)
from verifier._trust import REASONS, AnchorRecord, StatusRecord, TrustSource
from verifier.errors import CertledgerVerifyError, InvalidDocument

__all__ = ["Verifier", "format_failure", "verify"]

_NODE_CACHE_LIMIT = 2_000_000
#: The C accelerator's Merkle path (its plain case; None: the loop in _integrity, the reference).
_merkle_root = _accelerator.merkle_root if _accelerator is not None else None
DataInput = bytes | bytearray | memoryview | str | Path


def _when(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M UTC") if ts else "an unrecorded date"


def _day(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d") if ts else "an unrecorded date"


def _as_datetime(at: datetime | str | None) -> datetime:
    if at is None:
        return datetime.now(UTC)
    if isinstance(at, str):
        return parse_datetime(at)
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def _skip(name: str, because: str) -> Check:
    return Check(name, "skipped", because)


_FORMAT_PASSED = {name: Check("format", "passed", f"a well-formed {name}") for name in CREDENTIAL_TYPES}
_INTEGRITY_PASSED = Check("integrity", "passed", "content matches the issuer's hash and the batch root")
_NO_DATA = Check("data", "skipped", "no dataset was given to compare")
_AFTER_FORMAT_FAILED = tuple(
    Check(n, "skipped", "the credential is malformed (see format)")
    for n in ("integrity", "issuer", "anchor", "status", "validity", "data", "usage")
)
_AFTER_INTEGRITY_FAILED = tuple(
    Check(n, "skipped", "the credential's content could not be authenticated (see integrity)")
    for n in ("validity", "data", "usage")
)
_NO_PARTY = Check("usage", "skipped", "no relying party was given")
_NO_USES = {  # usage for an e-licence: only a data asset certificate lists authorised uses
    name: Check("usage", "skipped", f"only a data asset certificate lists authorised uses (this is a {name})")
    for name in CREDENTIAL_TYPES
}


class _State:
    """Per-credential working values, filled in as the checks run."""

    __slots__ = (
        "anchor",
        "anchor_why",
        "doc",
        "integrity_ok",
        "leaf",
        "proof",
        "salt_hexes",
        "skip",
        "state",
        "tails",
        "target",
        "type_name",
    )

    def __init__(self) -> None:
        self.doc: dict[str, Any] = {}
        self.type_name: str | None = None
        self.proof: ParsedProof | None = None
        self.salt_hexes: list[Any] = []
        self.tails: list[bytes] = []
        self.target: bytes | None = None  # targetHash, when the C accelerator computed it in _format
        self.skip: frozenset[str] = frozenset()
        self.leaf = b""
        self.anchor: AnchorRecord | None = None
        self.anchor_why = ""
        self.integrity_ok = False
        self.state: ProvenState | None = None


class Verifier:
    """Verifies credentials against one trust source, sharing per-batch work between them.

    The issuer signature is checked once per batch root, the anchor looked up once per root, and
    Merkle nodes computed for one credential are reused for its batch-mates.

    >>> verifier = Verifier(trust=TrustBundle.load("bundle.json"))   # doctest: +SKIP
    >>> verifier.verify(json.load(open("licence.json"))).valid        # doctest: +SKIP
    True
    """

    def __init__(
        self,
        *,
        trust: TrustSource,
        proof_package: Mapping[str, Any] | None = None,
        header_trust: HeaderTrust | None = None,
        proven_only: bool = False,
    ) -> None:
        """``proof_package``: a package (FORMAT.md §12) proving many credentials, e.g. a trust
        bundle's; when given, or when a credential carries its own ``proof.proofPackage``, its
        ``anchor`` and ``status`` come from the proven chain state, never from ``trust``.
        ``header_trust`` decides which package headers are trusted (default: a header signed by
        an operator that ``trust`` trusts). ``proven_only``: a credential with neither a package nor
        a proof-carrying anchor fails ``anchor`` instead of falling back to ``trust`` (the validator
        mode, FORMAT.md §14; a proof-carrying anchor proves the anchor only, its status still comes
        from ``trust``)."""
        self.trust = trust
        self._proven_only = proven_only
        self._header_trust: HeaderTrust = header_trust or OperatorHeaderTrust.of(trust)
        self._package = proof_package
        self._package_state: tuple[ProvenState | None, str] | None = None
        self._verified_heads: dict[tuple[Any, ...], Any] = {}
        self._status_proven: dict[ProvenHeader, Check] = {}
        self._anchors: dict[tuple[bytes, int, str], tuple[AnchorRecord | None, str]] = {}
        self._signatures: dict[tuple[Any, ...], Check] = {}
        self._nodes: dict[bytes, bytes] = {}
        self._anchor_checks: dict[tuple[Any, ...], Check] = {}
        self._batch: dict[tuple[Any, ...], tuple[AnchorRecord | None, Check, Check]] = {}
        self._issuer_checks: dict[tuple[Any, ...], Check] = {}
        self._status_passed: Check | None = None
        base = f"urn:certledger:{trust.chain_id}:{trust.anchor_registry}:status:"
        self._status_lists = {"revocation": base + "revocation", "suspension": base + "suspension"}
        self._times: dict[str, datetime] = {}
        self._validity_passed: dict[tuple[str, str], Check] = {}

    # -- public ------------------------------------------------------------------------------
    def verify(
        self,
        document: Mapping[str, Any] | str | bytes,
        *,
        at: datetime | str | None = None,
        data: DataInput | None = None,
        relying_party: str | None = None,
        purpose: str | None = None,
    ) -> VerificationResult:
        """Run every check on one credential (a parsed dict, or its JSON text/bytes)."""
        when = self._time(at) if isinstance(at, str) else _as_datetime(at)
        s = _State()
        fmt = self._format(document, s)
        if fmt.status != "passed":
            return self._result([fmt, *_AFTER_FORMAT_FAILED], s)
        integrity = self._integrity(s)
        issuer, anchor = self._batch_checks(s)
        checks = [fmt, integrity, issuer, anchor, self._status(s, anchor)]
        if not s.integrity_ok:
            checks += _AFTER_INTEGRITY_FAILED
        else:
            checks.append(self._validity(s, when))
            checks.append(_NO_DATA if data is None else self._data(s, data))
            checks.append(
                _NO_PARTY if relying_party is None else self._usage(s, when, relying_party, purpose)
            )
        return self._result(checks, s)

    def verify_many(
        self, documents: Iterable[Mapping[str, Any] | str | bytes], **options: Any
    ) -> list[VerificationResult]:
        """:meth:`verify` each document with the same options."""
        return [self.verify(d, **options) for d in documents]

    # -- checks ------------------------------------------------------------------------------
    def _format(self, document: Mapping[str, Any] | str | bytes, s: _State) -> Check:
        if type(document) is not dict and isinstance(document, (str, bytes, bytearray)):
            if len(document) > MAX_DOCUMENT_BYTES and (
                not isinstance(document, str)
                or len(document.encode("utf-8", "surrogatepass")) > MAX_DOCUMENT_BYTES
            ):
                return Check(
                    "format",
                    "failed",
                    f"the file is larger than {MAX_DOCUMENT_BYTES // (1024 * 1024)} MB; a credential is a few "
                    "kilobytes, so it was refused without parsing",
                )
            try:
                document = loads_strict(bytes(document) if not isinstance(document, str) else document)
            except ValueError as exc:
                return Check("format", "failed", f"the file is not valid JSON: {exc}")
        if not isinstance(document, dict):
            return Check("format", "failed", "a credential is a JSON object")
        s.doc = document
        types = document.get("type")
        if not (
            type(types) is list
            and len(types) == 2
            and types[0] == "VerifiableCredential"
            and type(types[1]) is str
            and types[1] in CREDENTIAL_TYPES
        ):
            return Check(
                "format",
                "failed",
                "this is not a certledger credential: its type must be one of " + ", ".join(CREDENTIAL_TYPES),
            )
        s.type_name = types[1]
        try:
            s.proof = proof = parse_proof(document.get("proof"))
            skip = redacted_ancestry(proof.redacted) if proof.redacted else frozenset()
            s.skip = skip
            # the compiled yes/no schema check first: a pass also vouches for the envelope's JSON types
            schema_valid = not skip and fast_validator_for(s.type_name)(document)
            if schema_valid and accelerated_target_hash is not None and "credentialSubject" in document:
                # the whole leaf walk and targetHash in C (the envelope written there from the
                # document); None: a case it leaves to the reference
                s.target = accelerated_target_hash(
                    SUITE_HASHES[proof.suite], proof.salts, document, document["credentialSubject"]
                )
            if s.target is None:
                walk_document(
                    document, proof.salts.get, skip, s.salt_hexes, s.tails, schema_valid=schema_valid
                )
        except InvalidDocument as exc:
            return Check("format", "failed", str(exc))
        problems = [] if schema_valid else schema_errors(document, s.type_name, skip)
        if not problems:
            problems = holder_problems(document, proof.redacted)
        if not problems and s.type_name in E_LICENCE_TYPES:
            problems = licence_metadata_problems(document)
        if problems:
            more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
            return Check(
                "format",
                "failed",
                f"the credential does not match the {s.type_name} schema: " + "; ".join(problems[:3]) + more,
            )
        return _FORMAT_PASSED[s.type_name]

    def _integrity(self, s: _State) -> Check:
        p = s.proof
        assert p is not None and s.type_name is not None
        h = SUITE_HASHES[p.suite]
        code = CREDENTIAL_TYPES[s.type_name]
        if p.credential_type != code:
            return Check(
                "integrity",
                "failed",
                f"the proof is for credential type {p.credential_type} "
                f"({TYPE_NAMES.get(p.credential_type, 'unknown')}), but the document is a {s.type_name}",
            )
        try:
            target = s.target if s.target is not None else self._walked_target(s, p, h)
        except (IntegrityFailure, InvalidDocument) as exc:
            return Check("integrity", "failed", str(exc))
        if target != p.target_hash:
            return Check(
                "integrity",
                "failed",
                "the credential's content does not match what the issuer signed: "
                "at least one field has been changed",
            )
        credential_subject = s.doc["credentialSubject"]
        salt = p.subject_salt
        if salt is not None and credential_subject.get("holderCodeType") != "citizenId":
            # an enterprise (FORMAT.md §1): subject_hash_of's salted commitment, inlined
            subject = keccak(salt + credential_subject["unifiedSocialCreditCode"].encode("utf-8"))
        else:  # a natural person (§2.4), or a proof without its subjectSalt (named there)
            try:
                subject = subject_hash_of(s.doc, p.salts, p.redacted, h, salt)
            except InvalidDocument as exc:
                return Check("integrity", "failed", str(exc))
        if subject != p.subject_hash:
            return Check(
                "integrity", "failed", "the proof is for another holder (its subjectHash does not match)"
            )
        leaf = leaf_hash(target, subject)
        node = _merkle_root(leaf, p.path, self._nodes, keccak, _NODE_CACHE_LIMIT) if _merkle_root else None
        if node is None:
            node = self._walked_root(leaf, p.path)
        if node != p.root:
            return Check(
                "integrity",
                "failed",
                "the Merkle proof does not lead from this credential to its batch root: "
                "the proof was altered or belongs to another credential",
            )
        s.leaf = leaf
        s.integrity_ok = True
        if not p.redacted:
            return _INTEGRITY_PASSED
        return Check(
            "integrity",
            "passed",
            f"content matches the issuer's hash and the batch root, "
            f"{len(p.redacted)} field(s) redacted by the holder (which fields is proven: the issuer's hash "
            "covers each field's path)",
        )

    def _walked_root(self, leaf: bytes, path: tuple[bytes, ...]) -> bytes:
        """The root ``path`` leads to from ``leaf``: merkle.process_proof, each parent cached."""
        node, nodes = leaf, self._nodes
        for sibling in path:
            pair = node + sibling if node < sibling else sibling + node  # merkle.hash_pair
            parent = nodes.get(pair)
            if parent is None:
                if len(nodes) > _NODE_CACHE_LIMIT:
                    nodes.clear()
                parent = nodes[pair] = keccak(pair)
            node = parent
        return node

    @staticmethod
    def _walked_target(s: _State, p: ParsedProof, h: Any) -> bytes:
        """``targetHash`` from ``_format``'s Python walk (the accelerator did not compute it);
        IntegrityFailure or InvalidDocument naming what does not add up."""
        digests = digests_from_walk(s.salt_hexes, s.tails, h) if len(s.tails) == len(p.salts) else None
        if digests is None or (p.redacted and not p.redacted.keys().isdisjoint(p.salts)):
            # Something does not add up: recompute the slow way, which names the field.
            return recompute_leaves(leaves_of(s.doc, s.skip), p.salts, p.redacted, h)
        if p.redacted:
            digests += [
                leaf_entry(k, _hex32(v, f"the redacted digest of {k}")) for k, v in p.redacted.items()
            ]
        return target_hash_of(h, digests)

    def _lookup_anchor(self, p: ParsedProof) -> tuple[AnchorRecord | None, str]:
        key = (p.root, p.chain_id, p.anchor_registry)
        hit = self._anchors.get(key)
        if hit is not None:
            return hit
        t = self.trust
        record: AnchorRecord | None = None
        why = ""
        if p.chain_id != t.chain_id:
            why = f"the credential was anchored on chain {p.chain_id}, but the trust source is for chain {t.chain_id}"
        elif p.anchor_registry != t.anchor_registry:
            why = (
                f"the credential names the anchor registry {p.anchor_registry}, but this chain's registry is "
                f"{t.anchor_registry}"
            )
        else:
            record = t.anchor(p.root)
            if record is None and p.anchor_proof is not None:
                from verifier._anchor_proof import verify_anchor_proof

                try:
                    record = verify_anchor_proof(p.anchor_proof, root=p.root, trust=t)
                except CertledgerVerifyError as exc:
                    why = f"the batch is not in the trust source and its anchor proof fails: {exc}"
            if record is None and not why:
                why = (
                    f"the batch root {'0x' + p.root.hex()[:16]}… is not anchored on chain {t.chain_id} "
                    f"as of block {t.block_number}"
                )
        self._anchors[key] = (record, why)
        return record, why

    def _anchor(self, s: _State) -> Check:
        p = s.proof
        assert p is not None
        if p.proof_package is not None or self._package is not None:
            record, why = self._package_anchor(s)
        elif self._proven_only and p.anchor_proof is None:
            record, why = (
                None,
                (
                    "no proof package: with pinned validators the anchor and status must be proven "
                    "from sealed chain state (the registry serves one: GET /v1/credentials/{id}/proof)"
                ),
            )
        else:
            record, why = self._lookup_anchor(p)
        s.anchor, s.anchor_why = record, why
        if record is None:
            return Check("anchor", "failed", why)
        key = (
            p.root,
            p.chain_id,
            p.anchor_registry,
            p.credential_type,
            p.batch_count,
            p.issuer_id,
            p.key_version,
            p.block_number,
            p.tx_hash,
        )
        cached = self._anchor_checks.get(key)
        if cached is None:
            cached = self._anchor_checks[key] = self._anchor_check(p, record)
        return cached

    def _proven_state(self, p: ParsedProof) -> tuple[ProvenState | None, str]:
        """The credential's own package, else the verifier's (built once)."""
        if p.proof_package is None:
            if self._package_state is None:
                self._package_state = self._open_package(self._package or {})
            return self._package_state
        return self._open_package(p.proof_package)

    def _open_package(self, package: Mapping[str, Any]) -> tuple[ProvenState | None, str]:
        t = self.trust
        try:
            state = ProvenState(
                package,
                chain_id=t.chain_id,
                anchor_registry=t.anchor_registry,
                header_trust=self._header_trust,
                verified=self._verified_heads,
            )
        except CertledgerVerifyError as exc:
            return None, f"the proof package fails: {exc}"
        return state, ""

    def _package_anchor(self, s: _State) -> tuple[AnchorRecord | None, str]:
        p = s.proof
        assert p is not None
        t = self.trust
        if p.chain_id != t.chain_id:
            return None, (
                f"the credential was anchored on chain {p.chain_id}, but the trust source is for chain {t.chain_id}"
            )
        if p.anchor_registry != t.anchor_registry:
            return None, (
                f"the credential names the anchor registry {p.anchor_registry}, but this chain's registry is "
                f"{t.anchor_registry}"
            )
        state, why = self._proven_state(p)
        if state is None:
            return None, why
        s.state = state
        try:
            record = state.anchor(p.root)
        except CertledgerVerifyError as exc:
            return None, f"the proof package does not prove the anchor: {exc}"
        if record is None:
            return None, (
                f"the proof package proves the batch root {'0x' + p.root.hex()[:16]}… is not anchored "
                f"as of block {state.header.number}"
            )
        return record, ""

    def _anchor_check(self, p: ParsedProof, record: AnchorRecord) -> Check:
        problems = []
        if record.credential_type != p.credential_type:
            problems.append(
                f"the anchor is for credential type {record.credential_type}, the proof says {p.credential_type}"
            )
        if record.count != p.batch_count:
            problems.append(
                f"the anchored batch has {record.count} credentials, the proof says {p.batch_count}"
            )
        if record.issuer_id != p.issuer_id or record.key_version != p.key_version:
            problems.append(
                f"the batch was anchored by issuer {record.issuer_id} key version {record.key_version}, "
                f"the proof says issuer {p.issuer_id} key version {p.key_version}"
            )
        if record.block_number != p.block_number:
            problems.append(
                f"the batch was anchored in block {record.block_number}, the proof says {p.block_number}"
            )
        # proof.anchor.txHash (FORMAT.md §5): checked where the trust source can see transactions
        # (RpcTrust.anchor_transaction); elsewhere it is a hint, and the reason says so.
        check_tx = getattr(self.trust, "anchor_transaction", None)
        if not problems and check_tx is not None:
            why = check_tx(p.root, p.tx_hash, record.block_number)
            if why:
                problems.append(why)
        if problems:
            return Check("anchor", "failed", "; ".join(problems))
        tx = (
            f" by transaction {p.tx_hash} (checked)"
            if check_tx is not None
            else f"; the transaction hash in the proof ({p.tx_hash[:12]}…) is the holder's claim, "
            "not checked by this trust source"
        )
        return Check(
            "anchor",
            "passed",
            f"batch of {record.count} anchored on chain {p.chain_id} in block "
            f"{record.block_number} ({_when(record.timestamp)}){tx}",
        )

    def _batch_checks(self, s: _State) -> tuple[Check, Check]:
        """``issuer`` and ``anchor``, which depend only on the batch (and the claimed issuer):
        computed once per batch and remembered."""
        p = s.proof
        assert p is not None
        claimed = s.doc["issuer"]  # schema-checked by `format`
        key = (
            p.root,
            p.signature,
            p.suite,
            p.credential_type,
            p.batch_count,
            p.issuer_id,
            p.key_version,
            p.chain_id,
            p.anchor_registry,
            p.block_number,
            p.tx_hash,
            claimed["id"],
            claimed["name"],
            claimed["unifiedSocialCreditCode"],
            s.type_name,
        )
        if p.proof_package is not None:  # the credential's own evidence: nothing shared with batch-mates
            anchor = self._anchor(s)
            return self._issuer(s), anchor
        hit = self._batch.get(key)
        if hit is None:
            anchor = self._anchor(s)
            hit = self._batch[key] = (s.anchor, self._issuer(s), anchor)
        s.anchor = hit[0]
        if self._package_state is not None:  # a verifier-wide package proves every credential's status
            s.state = self._package_state[0]
        return hit[1], hit[2]

    def _issuer(self, s: _State) -> Check:
        p, record = s.proof, s.anchor
        assert p is not None
        if record is None:
            return _skip(
                "issuer", "the batch's anchor record is needed to know which key signed it (see anchor)"
            )
        claimed = s.doc.get("issuer") or {}
        key = (
            p.root,
            p.signature,
            p.credential_type,
            p.batch_count,
            p.suite,
            claimed.get("id"),
            claimed.get("name"),
            claimed.get("unifiedSocialCreditCode"),
            s.type_name,
        )
        cached = self._issuer_checks.get(key)
        if cached is None:
            cached = self._issuer_checks[key] = self._issuer_check(s, p, record)
        return cached

    def _issuer_check(self, s: _State, p: ParsedProof, record: AnchorRecord) -> Check:
        t = self.trust
        issuer = t.issuer(record.issuer_id)
        if issuer is None:
            return Check("issuer", "failed", f"issuer {record.issuer_id} is not in the issuer registry")
        claimed = s.doc.get("issuer") or {}
        expected_id = f"did:certledger:{t.chain_id}:issuer:{issuer.id}"
        if (
            claimed.get("id") != expected_id
            or claimed.get("unifiedSocialCreditCode") != issuer.uscc
            or claimed.get("name") != issuer.name
        ):
            return Check(
                "issuer",
                "failed",
                f"the credential names its issuer as {claimed.get('name')!r} "
                f"({claimed.get('id')}), but the batch was anchored by {issuer.name} ({expected_id})",
            )
        if p.suite != issuer.suite:
            return Check(
                "issuer", "failed", f"{issuer.name} signs with {issuer.suite}, but the proof uses {p.suite}"
            )
        key = issuer.keys.get(record.key_version)
        if key is None:
            return Check(
                "issuer", "failed", f"{issuer.name} has no key version {record.key_version} in the registry"
            )
        if record.credential_type not in issuer.credential_types:
            name = TYPE_NAMES.get(record.credential_type, f"type {record.credential_type}")
            return Check("issuer", "failed", f"{issuer.name} is not authorised to issue {name} credentials")
        if not key.valid_at(record.timestamp):
            return Check(
                "issuer",
                "failed",
                f"key version {key.version} of {issuer.name} was not valid when the batch "
                f"was anchored ({_when(record.timestamp)})",
            )
        # An issuer suspended later does not invalidate earlier batches (FORMAT.md §7); blocks, not
        # times, decide "earlier" (consecutive blocks may share a timestamp).
        if (
            issuer.status == "suspended"
            and issuer.status_block
            and record.block_number >= issuer.status_block
        ):
            return Check(
                "issuer",
                "failed",
                f"the batch was anchored in block {record.block_number} ({_when(record.timestamp)}) while "
                f"{issuer.name} was suspended (since block {issuer.status_block}, {_when(issuer.status_timestamp)})",
            )
        if not issuer.active_at(record.timestamp):
            return Check(
                "issuer",
                "failed",
                f"{issuer.name} was outside its authorised issuing period when the batch "
                f"was anchored ({_when(record.timestamp)})",
            )
        sig_key = (
            p.root,
            p.signature,
            p.credential_type,
            p.batch_count,
            p.suite,
            key.account,
            key.sm2_public_key,
        )
        cached = self._signatures.get(sig_key)
        if cached is None:
            digest = batch_digest(
                p.root,
                p.credential_type,
                p.batch_count,
                chain_id=t.chain_id,
                anchor_registry=t.anchor_registry,
            )
            if verify_batch_signature(
                p.suite, digest, p.signature, account=key.account, sm2_public_key=key.sm2_public_key
            ):
                note = (
                    ""
                    if issuer.status != "suspended"
                    else f" (the issuer was suspended on {_when(issuer.status_timestamp)}, block "
                    f"{issuer.status_block}, after this batch was anchored; credentials it issued before "
                    "stay valid)"
                    if issuer.status_block
                    else " (the issuer is suspended now, since a time the trust source does not record; "
                    "credentials it issued before stay valid)"
                )
                cached = Check(
                    "issuer",
                    "passed",
                    f"signed by {issuer.name} ({issuer.uscc}), key version {key.version}, "
                    f"authorised for {s.type_name}{note}",
                )
            else:
                cached = Check(
                    "issuer",
                    "failed",
                    f"the batch signature was not made by key version {key.version} of {issuer.name}",
                )
            self._signatures[sig_key] = cached
        return cached

    def _status(self, s: _State, anchor: Check) -> Check:
        p, record = s.proof, s.anchor
        assert p is not None
        if anchor.status != "passed" or record is None:
            return _skip("status", "the batch's anchor could not be confirmed (see anchor)")
        if not s.integrity_ok:
            return _skip("status", "the credential could not be located in its batch (see integrity)")
        t = self.trust
        entries = s.doc["credentialStatus"]
        index_text = entries[0]["statusListIndex"]
        if entries[1]["statusListIndex"] != index_text:
            return Check(
                "status", "failed", "the revocation and suspension entries name different list positions"
            )
        lists = self._status_lists
        for entry in entries:
            if entry["statusListCredential"] != lists[entry["statusPurpose"]]:
                return Check(
                    "status",
                    "failed",
                    f"the credential's status list {entry['statusListCredential']} is not "
                    f"this chain's ({lists[entry['statusPurpose']]})",
                )
        if record.status not in (
            0,
            1,
        ):  # the batch itself (as the anchor source saw it, incl. an anchorProof)
            issuer = t.issuer(record.issuer_id)
            st = StatusRecord(
                record.status, record.reason, record.status_timestamp, issuer.name if issuer else "", "batch"
            )
        elif s.state is not None:
            try:
                st = s.state.status(p.root, s.leaf)
            except CertledgerVerifyError as exc:
                return Check("status", "failed", f"the proof package does not prove the status: {exc}")
            if st.status == 1:
                h = s.state.header
                passed = self._status_proven.get(h)
                if passed is None:
                    passed = self._status_proven[h] = Check(
                        "status",
                        "passed",
                        f"not revoked or suspended as of block {h.number} ({_when(h.timestamp)}), "
                        f"proven from chain state attested by {h.attested_by}",
                    )
                return passed
            if st.status not in (2, 3):
                return Check(
                    "status", "failed", f"the proven status slot holds an unknown status {st.status}"
                )
        else:
            st = t.credential_status(p.root, s.leaf, int(index_text))
        if st.status == 1:
            if self._status_passed is None:
                self._status_passed = Check(
                    "status",
                    "passed",
                    f"not revoked or suspended as of block {t.block_number} ({_when(t.block_timestamp)})",
                )
            return self._status_passed
        what = {2: "revoked", 3: "suspended"}.get(st.status, f"in status {st.status}")
        scope = "the whole batch was " if st.scope == "batch" else ""
        by = f" by {st.by}" if st.by else ""
        reason = REASONS.get(st.reason, f"code {st.reason}")
        return Check("status", "failed", f"{scope}{what}{by} on {_day(st.timestamp)}: reason {reason}")

    def _validity(self, s: _State, when: datetime) -> Check:
        start = self._time(s.doc["validFrom"])
        if (
            "validUntil" not in s.doc
        ):  # 长期: the schema allows it only with credentialSubject.longTermValidity
            if when < start:
                stamp = when.strftime("%Y-%m-%d %H:%M UTC")
                return Check(
                    "validity",
                    "failed",
                    f"not yet valid: valid from {s.doc['validFrom']} (checked at {stamp})",
                )
            return Check(
                "validity", "passed", f"valid from {s.doc['validFrom']}, long-term (长期, no end date)"
            )
        end = self._time(s.doc["validUntil"])
        if start <= when < end:
            key = (s.doc["validFrom"], s.doc["validUntil"])
            cached = self._validity_passed.get(key)
            if cached is None:
                if len(self._validity_passed) > 10_000:
                    self._validity_passed.clear()
                cached = self._validity_passed[key] = Check(
                    "validity", "passed", f"valid from {key[0]} until {key[1]}"
                )
            return cached
        stamp = when.strftime("%Y-%m-%d %H:%M UTC")
        if when < start:
            return Check(
                "validity", "failed", f"not yet valid: valid from {s.doc['validFrom']} (checked at {stamp})"
            )
        if when >= end:
            return Check("validity", "failed", f"expired on {s.doc['validUntil']} (checked at {stamp})")
        return Check("validity", "passed", f"valid from {s.doc['validFrom']} until {s.doc['validUntil']}")

    def _time(self, text: str) -> datetime:
        value = self._times.get(text)
        if value is None:
            if len(self._times) > 10_000:
                self._times.clear()
            value = self._times[text] = parse_datetime(text)
        return value

    def _data(self, s: _State, data: DataInput | None) -> Check:
        if data is None:
            return _skip("data", "no dataset was given to compare")
        subject = s.doc["credentialSubject"]
        if s.type_name == "DataAssetCertificate":
            what, expected, algorithm = (
                "dataset",
                subject.get("datasetDigest"),
                subject.get("digestAlgorithm"),
            )
            redacted = "the holder redacted the certified dataset digest, so the dataset cannot be checked"
        else:  # an e-licence: its official OFD/PDF file (FORMAT.md §2.4)
            official = subject.get("officialFile")
            if official is None and "/credentialSubject/officialFile" not in s.skip:
                return Check(
                    "data",
                    "failed",
                    "the licence names no official file, so the file cannot be checked against it",
                )
            what = "official file"
            expected, algorithm = (official or {}).get("digest"), (official or {}).get("digestAlgorithm")
            redacted = "the holder redacted the official file's digest, so the file cannot be checked"
        if expected is None or algorithm is None:
            return Check("data", "failed", redacted)
        try:
            actual = _hash_data(data, algorithm)
        except OSError as exc:
            return Check("data", "failed", f"the {what} could not be read: {exc.strerror or exc}")
        if actual != expected:
            return Check(
                "data",
                "failed",
                f"the {what} does not match the {'certificate' if what == 'dataset' else 'licence'}: "
                f"its {algorithm} digest is "
                f"{actual[:18]}…, the certified digest is {expected[:18]}…",
            )
        return Check("data", "passed", f"the {what}'s {algorithm} digest matches the certified digest")

    def _usage(self, s: _State, when: datetime, relying_party: str | None, purpose: str | None) -> Check:
        if relying_party is None:
            return _skip("usage", "no relying party was given")
        if s.type_name != "DataAssetCertificate":
            assert s.type_name is not None  # format passed
            return _NO_USES[s.type_name]
        uses = [u for u in s.doc["credentialSubject"].get("authorisedUses") or [] if isinstance(u, dict)]
        mine = [
            u for u in uses if (u.get("relyingParty") or {}).get("unifiedSocialCreditCode") == relying_party
        ]
        if not mine:
            return Check(
                "usage", "failed", f"{relying_party} is not among the certificate's authorised users"
            )
        if purpose is not None:
            purposes = sorted({str(u.get("purpose")) for u in mine})
            mine = [u for u in mine if u.get("purpose") == purpose]
            if not mine:
                return Check(
                    "usage",
                    "failed",
                    f"{relying_party} is authorised for {', '.join(purposes)}, not for {purpose!r}",
                )
        current = [u for u in mine if "until" in u and parse_datetime(u["until"]) > when]
        if not current:
            last = max(u.get("until", "") for u in mine)
            return Check("usage", "failed", f"the authorisation for {relying_party} ended on {last}")
        use = current[0]
        name = (use.get("relyingParty") or {}).get("name", relying_party)
        return Check(
            "usage", "passed", f"{name} is authorised for {use.get('purpose')!r} until {use['until']}"
        )

    # -- assembling ---------------------------------------------------------------------------
    @staticmethod
    def _result(checks: list[Check], s: _State) -> VerificationResult:
        doc = s.doc
        summary = CredentialSummary(
            id=_text(doc, "id"),
            type=s.type_name,
            issuer=_text(doc.get("issuer"), "name"),
            subject=_text(doc.get("credentialSubject"), "unifiedSocialCreditCode")
            or _citizen(doc.get("credentialSubject")),
        )
        valid = "failed" not in [c.status for c in checks]
        return VerificationResult(valid, tuple(checks), summary)


def format_failure(reason: str) -> VerificationResult:
    """The result for an input that never reached the checks (e.g. a file that cannot be read):
    ``format`` failed with ``reason``, every other check skipped."""
    return VerificationResult(
        False,
        (Check("format", "failed", reason), *_AFTER_FORMAT_FAILED),
        CredentialSummary(None, None, None, None),
    )


def _citizen(subject: Any) -> str | None:
    """How a natural person holder is named in a summary: the number if disclosed, else that it is not."""
    if type(subject) is not dict or subject.get("holderCodeType") != "citizenId":
        return None
    number = subject.get("citizenIdNumber")
    return f"citizen ID {number}" if type(number) is str else "a natural person (citizen ID redacted)"


def _text(obj: Any, key: str) -> str | None:
    value = obj.get(key) if type(obj) is dict else None
    return value if type(value) is str else None


def _hash_data(data: DataInput, algorithm: str) -> str:
    h = hashlib.sha256() if algorithm == "sha256" else hashlib.new("sm3")
    if isinstance(data, (bytes, bytearray, memoryview)):
        h.update(data)
    else:
        with open(data, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    return "0x" + h.hexdigest()


def verify(
    document: Mapping[str, Any] | str | bytes,
    *,
    trust: TrustSource,
    at: datetime | str | None = None,
    data: DataInput | None = None,
    relying_party: str | None = None,
    purpose: str | None = None,
) -> VerificationResult:
    """Verify one credential against ``trust`` (a :class:`TrustBundle` or :class:`RpcTrust`).

    ``at`` is the time for ``validity`` and ``usage`` (default: now); ``data`` the dataset
    (bytes or a path) for ``data``; ``relying_party`` (a credit code) and ``purpose`` for ``usage``.
    """
    return Verifier(trust=trust).verify(
        document, at=at, data=data, relying_party=relying_party, purpose=purpose
    )

"""Cross-border data flows ("data customs"): declare, decide, report receipt, trace.

The modules: :mod:`~registry.flows.schemas` (constants, errors, request bodies, pure helpers),
:mod:`~registry.flows.ledger` (declare, settle, decide, receipt, read — on the chain),
:mod:`~registry.flows.trace` (the trace as pure functions, from the DB or from chain events),
:mod:`~registry.flows.render` (JSON, CSV, SVG), :mod:`~registry.flows.rules` (the rule tables,
FORMAT.md §11.1), :mod:`~registry.flows.assess` (the tables applied, §11.2) and
:mod:`~registry.flows.declare` (the 2024 fields and the rule applied when a flow is declared).

**Declare.** An exporter organisation declares a flow of a data asset it holds a certificate for
(an original flow), or — as the importer of a parent flow — an onward transfer of the same asset.
The full declaration is stored off-chain; its hash ``declarationHash = sha256(JCS(declaration))``
(RFC 8785) goes on-chain with ``DataFlowLedger.declareFlow``, signed by the exporter's own key,
together with the certificate's Merkle proof (root, targetHash, subjectHash, proof), which the
contract checks against the anchor registry. The flow id comes from the FlowDeclared event.

**Decide.** A regulator approves or rejects (a rejection needs a reason) with ``decideFlow``,
signed by the regulator's key (REGULATOR_ROLE on-chain).

**Rules**, checked before a declaration is sent and re-checked when traced: the certificate is
valid (anchored, not revoked or suspended, within validFrom/validUntil); the destination and
purpose are within the certificate's authorised uses; the legal basis covers what the rule tables
require (``registry.flows.rules``, FORMAT.md §11.1: exemptions, thresholds, GBA scope, core data);
an onward transfer needs a parent that is approved or still pending, is
declared by the parent's importer from where the parent arrived, and must not loop back to an
organisation upstream.

*Authorised uses for a cross-border destination.* The credential schema's authorised use is
``{relyingParty: {name, unifiedSocialCreditCode}, purpose, until}``. A use authorises a flow to
jurisdiction J for purpose P, declared at time T (T < until), when either
  * its ``purpose`` is ``"export:<S>:<P>"`` or ``"export:<S>:*"`` where S is J or J's country
    (``export:CN:*`` covers CN-GD), or
  * its relying party's unified social credit code is the importer's identifier and its purpose
    is exactly P (a named importer).

**Trace.** Flows (edges) between participants (nodes, keyed by participant id as on-chain: the
keyed commitment keccak256(subjectSalt ‖ utf8(identifier)) of registry.services.participants,
FORMAT.md §11), totals per jurisdiction pair, and violations:

| kind | source | when |
|---|---|---|
| certificate_revoked / certificate_suspended | chain | an approved flow's certificate is revoked / suspended |
| parent_rejected | chain | an onward transfer (pending or approved) whose parent was rejected |
| destination_not_authorised | registry | a pending/approved flow outside the certificate's authorised uses |
| certificate_expired | registry | a pending/approved flow declared outside the certificate's validity |
| payload_digest_mismatch | registry | the importer reported a payload digest other than the declared one |
| threshold_split, basis_insufficient, gba_scope, filing_overdue, assessment_expired | registry | rule tables (§11.2) |

The same trace is built from the registry's DB (:func:`~registry.flows.trace.trace_from_db`) and from chain events alone
(:func:`~registry.flows.chain_trace.trace_from_chain`); :func:`~registry.flows.trace.chain_view` is the
part the chain knows, which must be equal.
"""

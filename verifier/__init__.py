"""certledger verifier: the credential format, its hashing, Merkle proofs and signatures, trust
sources, and verification — a standalone library (and the ``certledger-verify`` CLI) that imports
nothing from the rest of certledger and needs no network.

Verify a holder's credential offline against a trust bundle the registry exported::

    import json
    from verifier import TrustBundle, verify

    bundle = TrustBundle.load("bundle.json", operators=["0x5b38da6a701c568545dcfcb03fcb875f56beddc4"])
    result = verify(json.load(open("licence.json", encoding="utf-8")), trust=bundle,
                    relying_party="91440101MA5CXXXX08", purpose="loan assessment")
    for check in result.checks:
        print(check.name, check.status, check.reason)
    assert result.valid

Issue (what the registry does, batch by batch; :mod:`verifier.issuance` has the issuer's whole
public API, fast paths included)::

    prepared = [prepare_credential(doc, suite="secp256k1") for doc in docs]
    tree = StandardMerkleTree.of([(p.target_hash, p.subject_hash) for p in prepared])
    signature = sign_batch("secp256k1", issuer_key, tree.root, 1, len(docs),
                           chain_id=chain_id, anchor_registry=anchor_registry)
    # ... anchor tree.root on-chain, then for each i:
    holder_copy = assemble_holder_copy(docs[i], prepared[i], merkle_root=tree.root,
                                       merkle_proof=tree.proof(i), ...)

The byte-level format is normative in docs/FORMAT.md.
"""

from verifier import errors, issuance
from verifier._anchor_proof import (
    ValidatorPinnedTrust,
    anchor_storage_key,
    fetch_anchor_proof,
    header_rlp_from_block,
    sign_header,
    verify_anchor_proof,
)
from verifier._bundle import TrustBundle, add_bundle_signature, build_trust_bundle, sign_trust_bundle
from verifier._holder import (
    PreparedCredential,
    assemble_holder_copy,
    credential_type_of,
    prepare_credential,
    redact,
    subject_hash,
    subject_salt_for,
)
from verifier._internal.keccak import keccak256
from verifier._internal.merkle import StandardMerkleTree, leaf_hash
from verifier._internal.suites import batch_digest, eth_address, sign_batch, sm2_public_key
from verifier._issuer_proof import ProvenIssuers, issuer_slots
from verifier._pledge_proof import (
    AssetPledgeState,
    credential_asset_key,
    decode_history,
    pledge_check,
    pledge_storage_keys,
    verify_pledge_proof,
)
from verifier._presentation import (
    HolderKey,
    PresentationRequest,
    PresentationResult,
    present,
    unsigned_presentation,
    verify_presentation,
)
from verifier._proof_bundle import (
    BundleProofs,
    attach_bundle_proofs,
    fetch_issuer_proof,
    fetch_sealed_proof_package,
    open_bundle_proofs,
    sealed_header_from_block,
)
from verifier._proof_package import (
    HeaderTrust,
    OperatorHeaderTrust,
    ProvenHeader,
    ProvenState,
    StorageWalk,
    build_proof_package,
    fetch_proof_package,
    status_storage_key,
)
from verifier._qbft import (
    QbftHeader,
    ValidatorHeaderTrust,
    ValidatorSet,
    follow_validator_changes,
    parse_qbft_header,
    seal_qbft_header,
    verify_sealed_header,
)
from verifier._result import CHECK_NAMES, Check, CredentialSummary, VerificationResult
from verifier._rpc import RpcTrust
from verifier._schema import CREDENTIAL_TYPES, schema_for_id
from verifier._trust import AnchorRecord, IssuerKeyRecord, IssuerRecord, StatusRecord, TrustSource
from verifier._verify import Verifier, verify

__all__ = [
    "AnchorRecord",
    "BundleProofs",
    "CHECK_NAMES",
    "CREDENTIAL_TYPES",
    "Check",
    "CredentialSummary",
    "HeaderTrust",
    "HolderKey",
    "IssuerKeyRecord",
    "IssuerRecord",
    "OperatorHeaderTrust",
    "PreparedCredential",
    "PresentationRequest",
    "PresentationResult",
    "ProvenHeader",
    "ProvenIssuers",
    "ProvenState",
    "QbftHeader",
    "RpcTrust",
    "StandardMerkleTree",
    "StatusRecord",
    "StorageWalk",
    "TrustBundle",
    "TrustSource",
    "ValidatorHeaderTrust",
    "ValidatorPinnedTrust",
    "ValidatorSet",
    "VerificationResult",
    "Verifier",
    "add_bundle_signature",
    "anchor_storage_key",
    "attach_bundle_proofs",
    "AssetPledgeState",
    "assemble_holder_copy",
    "batch_digest",
    "build_proof_package",
    "build_trust_bundle",
    "credential_asset_key",
    "credential_type_of",
    "decode_history",
    "errors",
    "eth_address",
    "fetch_anchor_proof",
    "fetch_issuer_proof",
    "fetch_proof_package",
    "fetch_sealed_proof_package",
    "follow_validator_changes",
    "header_rlp_from_block",
    "issuance",
    "issuer_slots",
    "keccak256",
    "leaf_hash",
    "open_bundle_proofs",
    "parse_qbft_header",
    "pledge_check",
    "pledge_storage_keys",
    "prepare_credential",
    "present",
    "redact",
    "schema_for_id",
    "seal_qbft_header",
    "sealed_header_from_block",
    "sign_batch",
    "sign_header",
    "sign_trust_bundle",
    "sm2_public_key",
    "status_storage_key",
    "subject_hash",
    "subject_salt_for",
    "verify",
    "verify_anchor_proof",
    "verify_pledge_proof",
    "unsigned_presentation",
    "verify_presentation",
    "verify_sealed_header",
]

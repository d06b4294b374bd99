"""The verifier's exception tree: one root, :class:`CertledgerVerifyError`.

Every message is written for the person running the verifier (a bank clerk, a registry
operator), not for a debugger: it says what is wrong and, where it helps, what to do.

::

    CertledgerVerifyError
    ├── InvalidDocument          the credential is not a well-formed certledger credential
    │   ├── NumberOutOfRange     an integer outside ±(2^53−1)
    │   └── RedactionError       redact() was asked for something it may not do
    ├── InvalidBundle            the trust bundle cannot be used (unreadable file, ...)
    │   ├── UnsupportedBundle    not a certledger trust bundle, or a version this verifier does not read
    │   ├── MalformedBundle      not valid JSON, or a member missing or of the wrong type
    │   └── BundleSignatureError the trust bundle's signature fails or its signer is not pinned
    ├── InvalidAnchorProof       a proof-carrying anchor does not prove what it claims
    │   └── InvalidProofPackage  a proof package (header + eth_getProof) does not prove anchor and status
    ├── InvalidPresentation      a presentation or presentation request is malformed
    ├── InvalidSealedHeader      a QBFT header's committed seals do not make it final for the pinned validators
    ├── InvalidValidatorSet      a validators file cannot be used
    ├── StaleEvidence            the trust source's evidence is older than the freshness policy
    ├── SignatureError           a key or signature is malformed, or signing failed
    ├── MerkleError              a Merkle tree or proof is malformed
    └── TrustSourceError         an online trust source could not be reached or answered badly
"""

from __future__ import annotations

__all__ = [
    "BundleSignatureError",
    "CertledgerVerifyError",
    "InvalidAnchorProof",
    "InvalidPledgeProof",
    "InvalidBundle",
    "InvalidDocument",
    "InvalidPresentation",
    "InvalidProofPackage",
    "InvalidSealedHeader",
    "InvalidValidatorSet",
    "MalformedBundle",
    "MerkleError",
    "NumberOutOfRange",
    "RedactionError",
    "SignatureError",
    "StaleEvidence",
    "TrustSourceError",
    "UnsupportedBundle",
]


class CertledgerVerifyError(Exception):
    """Root of every error the verifier raises on purpose."""


class InvalidDocument(CertledgerVerifyError, ValueError):
    """The credential is not a well-formed certledger credential."""


class NumberOutOfRange(InvalidDocument):
    """An integer lies outside ±(2^53−1), the range every JSON implementation reads exactly."""


class RedactionError(InvalidDocument):
    """A redaction request names a path that does not exist or may not be redacted."""


class InvalidBundle(CertledgerVerifyError, ValueError):
    """A trust bundle is malformed, of the wrong type or version, or inconsistent."""


class UnsupportedBundle(InvalidBundle):
    """The file is not a certledger trust bundle (``type``) or of an unsupported ``version``."""


class MalformedBundle(InvalidBundle):
    """The trust bundle is not valid JSON, or a member is missing or of the wrong type."""


class BundleSignatureError(InvalidBundle):
    """A trust bundle's signature does not verify, or its signer is not a pinned operator."""


class InvalidAnchorProof(CertledgerVerifyError, ValueError):
    """A proof-carrying anchor (block header + eth_getProof) does not prove the anchor."""


class InvalidProofPackage(InvalidAnchorProof):
    """A proof package (docs/FORMAT.md §12) is malformed or does not prove what it claims; the
    message starts with the member that failed."""


class InvalidSealedHeader(CertledgerVerifyError, ValueError):
    """A QBFT block header is malformed, or its committed seals are not a quorum of distinct pinned
    validators (docs/FORMAT.md §14); the message names the failing check."""


class InvalidValidatorSet(CertledgerVerifyError, ValueError):
    """A validators file (docs/FORMAT.md §14.2) is unreadable, malformed or of an unsupported version."""


class StaleEvidence(CertledgerVerifyError):
    """The trust source's evidence is older than the freshness policy allows (docs/FORMAT.md §15)."""


class SignatureError(CertledgerVerifyError, ValueError):
    """A key or a signature is malformed, or signing failed."""


class MerkleError(CertledgerVerifyError, ValueError):
    """A Merkle tree or proof is malformed (wrong lengths, index out of range, ...)."""


class InvalidPresentation(CertledgerVerifyError, ValueError):
    """A presentation or presentation request is malformed (docs/FORMAT.md §13)."""


class TrustSourceError(CertledgerVerifyError):
    """An online trust source could not be reached, or its answer made no sense."""


class InvalidPledgeProof(InvalidAnchorProof):
    """A pledge proof (docs/FORMAT.md, "Pledges": block header + eth_getProof of an asset's
    PledgeRegistry slots) is malformed or does not prove the asset's pledge state."""

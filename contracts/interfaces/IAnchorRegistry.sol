// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title Anchor registry
/// @notice Authorised issuers anchor Merkle roots of credential batches. Status changes
/// (revocation, suspension, reinstatement) apply to a whole batch or to one credential, proven
/// to be in its batch with an OpenZeppelin MerkleProof. Only the anchoring issuer (any of its key
/// versions) or governance may change a status; a revocation is final.
///
/// A credential's leaf is the OpenZeppelin StandardMerkleTree leaf of the pair
/// `(bytes32 targetHash, bytes32 subjectHash)`:
/// `keccak256(bytes.concat(keccak256(abi.encode(targetHash, subjectHash))))`, where
/// `subjectHash = keccak256(utf8(subject's unified social credit code))` (docs/FORMAT.md).
interface IAnchorRegistry {
    /// @notice Status of a batch or of one credential. For a credential, `None` means "as its batch".
    enum Status {
        None,
        Valid,
        Revoked,
        Suspended
    }

    /// @notice One storage slot per anchored root (its layout is normative: docs/FORMAT.md).
    struct Anchor {
        uint32 issuerId;
        uint16 keyVersion;
        uint16 credentialType;
        uint32 count;
        uint64 blockNumber;
        uint64 timestamp;
        Status status;
        uint8 reason;
    }

    /// @notice The status override of one credential in one batch.
    struct CredentialStatus {
        Status status;
        uint8 reason;
        uint64 timestamp;
    }

    /// @notice The root is zero.
    error InvalidRoot(bytes32 root);
    /// @notice The batch count is zero.
    error InvalidCount(uint32 count);
    /// @notice The root was anchored before.
    error RootAlreadyAnchored(bytes32 root);
    /// @notice The root was never anchored.
    error RootNotAnchored(bytes32 root);
    /// @notice `account` is neither the anchoring issuer's key nor governance.
    error NotStatusAuthority(address account, bytes32 root);
    /// @notice A suspended issuer may revoke and suspend but not reinstate.
    error IssuerSuspendedCannotReinstate(uint32 issuerId);
    /// @notice The proof does not lead from `leaf` to `root`.
    error InvalidMerkleProof(bytes32 root, bytes32 leaf);
    /// @notice The batch or credential `id` is revoked; revocation is final.
    error AlreadyRevoked(bytes32 id);
    /// @notice The batch or credential `id` is already suspended.
    error AlreadySuspended(bytes32 id);
    /// @notice The batch or credential `id` is not suspended.
    error NotSuspended(bytes32 id);

    /// @notice Emitted when an issuer anchors a batch.
    event BatchAnchored(
        bytes32 indexed root,
        uint32 indexed issuerId,
        uint16 indexed credentialType,
        uint16 keyVersion,
        uint32 count
    );
    /// @notice Emitted when a batch is revoked, suspended or reinstated (`status` Valid).
    event BatchStatusChanged(bytes32 indexed root, uint32 indexed issuerId, Status status, uint8 reason, address by);
    /// @notice Emitted when one credential is revoked, suspended or reinstated (`status` None).
    event CredentialStatusChanged(
        bytes32 indexed leaf, bytes32 indexed root, uint32 indexed issuerId, Status status, uint8 reason, address by
    );

    /// @notice Anchors a batch root. Caller: an active issuer allowed `credentialType`.
    /// Emits {BatchAnchored}. Reverts {InvalidRoot}, {InvalidCount}, {RootAlreadyAnchored} or the
    /// issuer registry's authorisation errors.
    function anchor(bytes32 root, uint16 credentialType, uint32 count) external;

    /// @notice Revokes a whole batch, finally. Emits {BatchStatusChanged}.
    function revokeBatch(bytes32 root, uint8 reason) external;

    /// @notice Suspends a valid batch. Emits {BatchStatusChanged}.
    function suspendBatch(bytes32 root, uint8 reason) external;

    /// @notice Reinstates a suspended batch. Emits {BatchStatusChanged}.
    function reinstateBatch(bytes32 root) external;

    /// @notice Revokes one credential, finally, proven in `root` by `proof`.
    /// Emits {CredentialStatusChanged}.
    function revokeCredential(
        bytes32 root,
        bytes32 targetHash,
        bytes32 subjectHash,
        bytes32[] calldata proof,
        uint8 reason
    ) external;

    /// @notice Suspends one credential, proven in `root` by `proof`. Emits {CredentialStatusChanged}.
    function suspendCredential(
        bytes32 root,
        bytes32 targetHash,
        bytes32 subjectHash,
        bytes32[] calldata proof,
        uint8 reason
    ) external;

    /// @notice Reinstates a credential suspended in batch `root` (its leaf was proven when it was
    /// suspended). Emits {CredentialStatusChanged}.
    function reinstateCredential(bytes32 root, bytes32 leaf) external;

    /// @notice The anchor record of `root` (all zero if never anchored).
    function anchorOf(bytes32 root) external view returns (Anchor memory);

    /// @notice The status override of credential `leaf` in batch `root` (Status.None if it follows
    /// its batch). Overrides are per (root, leaf): another issuer anchoring the same leaf in its own
    /// batch cannot touch this one.
    function credentialStatusOf(bytes32 root, bytes32 leaf) external view returns (CredentialStatus memory);

    /// @notice The effective status of the credential `leaf` in batch `root`: the batch status
    /// unless the batch is valid and the credential has an override. Does not check membership.
    function statusOf(bytes32 root, bytes32 leaf) external view returns (Status status, uint8 reason);

    /// @notice Whether the credential is in an anchored batch and currently Valid.
    function isValid(bytes32 root, bytes32 targetHash, bytes32 subjectHash, bytes32[] calldata proof)
        external
        view
        returns (bool);

    /// @notice The StandardMerkleTree leaf of `(targetHash, subjectHash)`.
    function leafHash(bytes32 targetHash, bytes32 subjectHash) external pure returns (bytes32);

    /// @notice The issuer registry this registry authorises against.
    function issuerRegistry() external view returns (address);
}

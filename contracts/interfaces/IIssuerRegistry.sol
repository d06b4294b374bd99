// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title Issuer registry
/// @notice The governance body (a provincial data authority or market regulator) registers the
/// government departments that may issue credentials: their chain account, organisation name,
/// unified social credit code, the credential types each may issue, its signature suite and the
/// window in which it may issue. Keys rotate by version; anchors made with an older key version
/// stay valid because every anchor records the key version that made it.
interface IIssuerRegistry {
    /// @notice How the issuer signs batch roots off-chain (see docs/FORMAT.md, "Signature suites").
    enum Suite {
        Secp256k1, // EIP-712 signature by the issuer's chain account
        Sm2Sm3 // SM2 signature by the registered SM2 public key, SM3 field digests
    }

    /// @notice Lifecycle of an issuer. `None` means the id was never registered.
    enum IssuerStatus {
        None,
        Active,
        Suspended
    }

    /// @notice The fixed, one-slot part of an issuer record plus its descriptive fields.
    struct Issuer {
        uint16 keyVersion; // current key version, starting at 1
        Suite suite;
        IssuerStatus status;
        uint8 suspensionReason;
        uint64 activeFrom; // unix seconds; anchors before this are refused
        uint64 activeUntil; // unix seconds; 0 = open-ended
        address account; // current key's chain account
        string name;
        string uscc; // unified social credit code, 18 characters
    }

    /// @notice One version of an issuer's key.
    struct IssuerKey {
        address account; // chain account (and, for Secp256k1, the EIP-712 signer)
        uint64 validFrom; // unix seconds when this version became current
        uint64 validUntil; // unix seconds when it was rotated out; 0 = current
        bytes sm2PublicKey; // 64-byte uncompressed SM2 point (x || y) for Sm2Sm3, empty otherwise
    }

    /// @notice `issuerId` was never registered.
    error IssuerUnknown(uint32 issuerId);
    /// @notice `account` is the zero address.
    error InvalidAccount(address account);
    /// @notice `account` already belongs to (a current key of) issuer `issuerId`.
    error AccountAlreadyRegistered(address account, uint32 issuerId);
    /// @notice The unified social credit code is not 18 bytes long.
    error InvalidUscc(string uscc);
    /// @notice The activity window is empty.
    error InvalidActivityWindow(uint64 activeFrom, uint64 activeUntil);
    /// @notice The SM2 public key does not fit the suite (64 bytes for Sm2Sm3, empty for Secp256k1).
    error InvalidSm2PublicKey(Suite suite, uint256 length);
    /// @notice The issuer is not in the status the operation needs.
    error IssuerStatusMismatch(uint32 issuerId, IssuerStatus status);
    /// @notice `account` is neither governance nor the issuer's current key.
    error NotIssuerOrGovernance(address account, uint32 issuerId);
    /// @notice Credential type 0 is reserved.
    error InvalidCredentialType(uint16 credentialType);

    /// @notice Emitted when governance registers an issuer.
    event IssuerRegistered(
        uint32 indexed issuerId,
        address indexed account,
        Suite suite,
        uint64 activeFrom,
        uint64 activeUntil,
        string name,
        string uscc,
        bytes sm2PublicKey
    );
    /// @notice Emitted when an issuer gains or loses the right to issue a credential type.
    event CredentialTypeSet(uint32 indexed issuerId, uint16 indexed credentialType, bool allowed);
    /// @notice Emitted when governance suspends an issuer.
    event IssuerSuspended(uint32 indexed issuerId, uint8 reason);
    /// @notice Emitted when governance reinstates a suspended issuer.
    event IssuerReinstated(uint32 indexed issuerId);
    /// @notice Emitted when an issuer's key is rotated; `keyVersion` is the new version.
    event IssuerKeyRotated(
        uint32 indexed issuerId,
        uint16 indexed keyVersion,
        address indexed account,
        address previousAccount,
        bytes sm2PublicKey
    );

    /// @notice Registers an issuer with key version 1.
    /// @dev Requirements: caller has GOVERNANCE_ROLE; `account` non-zero and unused; `uscc` 18
    /// bytes; `activeUntil` is 0 or after `activeFrom`; `sm2PublicKey` fits `suite`.
    /// Emits {IssuerRegistered} and one {CredentialTypeSet} per type.
    /// @return issuerId the new issuer's id, counting from 1.
    function registerIssuer(
        address account,
        string calldata name,
        string calldata uscc,
        uint16[] calldata credentialTypes,
        Suite suite,
        bytes calldata sm2PublicKey,
        uint64 activeFrom,
        uint64 activeUntil
    ) external returns (uint32 issuerId);

    /// @notice Allows or forbids an issuer a credential type. Caller: GOVERNANCE_ROLE.
    /// Emits {CredentialTypeSet}.
    function setCredentialType(uint32 issuerId, uint16 credentialType, bool allowed) external;

    /// @notice Suspends an active issuer: it can no longer anchor. Caller: GOVERNANCE_ROLE.
    /// Emits {IssuerSuspended}.
    function suspendIssuer(uint32 issuerId, uint8 reason) external;

    /// @notice Reinstates a suspended issuer. Caller: GOVERNANCE_ROLE. Emits {IssuerReinstated}.
    function reinstateIssuer(uint32 issuerId) external;

    /// @notice Replaces the issuer's key with a new version; the old account can no longer act.
    /// @dev Caller: GOVERNANCE_ROLE or the issuer's current account. Emits {IssuerKeyRotated}.
    function rotateKey(uint32 issuerId, address newAccount, bytes calldata newSm2PublicKey) external;

    /// @notice The issuer record. Reverts {IssuerUnknown}.
    function issuer(uint32 issuerId) external view returns (Issuer memory);

    /// @notice One key version of an issuer. Reverts {IssuerUnknown} for an unknown version.
    function issuerKey(uint32 issuerId, uint16 keyVersion) external view returns (IssuerKey memory);

    /// @notice The status of an issuer (None if never registered) — the cheap view for status checks.
    function issuerStatus(uint32 issuerId) external view returns (IssuerStatus);

    /// @notice The issuer whose *current* key is `account`, or 0.
    function issuerOf(address account) external view returns (uint32 issuerId);

    /// @notice Whether `issuerId` may issue `credentialType`.
    function isAllowed(uint32 issuerId, uint16 credentialType) external view returns (bool);

    /// @notice Number of registered issuers (ids run from 1 to this).
    function issuerCount() external view returns (uint32);

    /// @notice Checks that `account` may anchor `credentialType` now.
    /// @dev Reverts {NotAnIssuer}, {IssuerStatusMismatch}, {IssuerOutsideActivityWindow} or
    /// {CredentialTypeNotAllowed} (declared in IAnchorRegistry's terms by this registry).
    /// @return issuerId the issuer, @return keyVersion the key version `account` holds.
    function authorise(address account, uint16 credentialType)
        external
        view
        returns (uint32 issuerId, uint16 keyVersion);

    /// @notice `account` is not the current key of any issuer.
    error NotAnIssuer(address account);
    /// @notice The issuer may not issue now (`timestamp` outside its activity window).
    error IssuerOutsideActivityWindow(uint32 issuerId, uint64 timestamp);
    /// @notice The issuer is not allowed `credentialType`.
    error CredentialTypeNotAllowed(uint32 issuerId, uint16 credentialType);
}

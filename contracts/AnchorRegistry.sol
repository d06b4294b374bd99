// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {IAnchorRegistry} from "./interfaces/IAnchorRegistry.sol";
import {IIssuerRegistry} from "./interfaces/IIssuerRegistry.sol";

/// @title AnchorRegistry
/// @notice See {IAnchorRegistry}. Its EIP-712 domain ("certledger", "1", chain id, this address)
/// is the domain of the issuers' off-chain batch signatures (ERC-5267 `eip712Domain()`).
contract AnchorRegistry is IAnchorRegistry, AccessControl, EIP712 {
    /// @notice Role of the governance body, which may change any status.
    bytes32 public constant GOVERNANCE_ROLE = keccak256("GOVERNANCE_ROLE");

    IIssuerRegistry private immutable _issuers;

    /// @dev Storage slot of this mapping is normative (docs/FORMAT.md, "Proof-carrying anchor").
    mapping(bytes32 root => Anchor anchorRecord) private _anchors;
    mapping(bytes32 root => mapping(bytes32 leaf => CredentialStatus status)) private _credentialStatus;

    constructor(address governance, IIssuerRegistry issuers) EIP712("certledger", "1") {
        _issuers = issuers;
        _grantRole(DEFAULT_ADMIN_ROLE, governance);
        _grantRole(GOVERNANCE_ROLE, governance);
    }

    /// @notice Version of this contract's interface.
    function version() external pure returns (string memory) {
        return "1.0.0";
    }

    /// @inheritdoc IAnchorRegistry
    function anchor(bytes32 root, uint16 credentialType, uint32 count) external {
        if (root == bytes32(0)) revert InvalidRoot(root);
        if (count == 0) revert InvalidCount(count);
        Anchor storage record = _anchors[root];
        if (record.status != Status.None) revert RootAlreadyAnchored(root);
        (uint32 issuerId, uint16 keyVersion) = _issuers.authorise(msg.sender, credentialType);
        _anchors[root] = Anchor({
            issuerId: issuerId,
            keyVersion: keyVersion,
            credentialType: credentialType,
            count: count,
            blockNumber: uint64(block.number),
            timestamp: uint64(block.timestamp),
            status: Status.Valid,
            reason: 0
        });
        emit BatchAnchored(root, issuerId, credentialType, keyVersion, count);
    }

    /// @inheritdoc IAnchorRegistry
    function revokeBatch(bytes32 root, uint8 reason) external {
        Anchor storage record = _requireAnchored(root);
        _requireAuthority(record.issuerId, root, false);
        if (record.status == Status.Revoked) revert AlreadyRevoked(root);
        _setBatchStatus(record, root, Status.Revoked, reason);
    }

    /// @inheritdoc IAnchorRegistry
    function suspendBatch(bytes32 root, uint8 reason) external {
        Anchor storage record = _requireAnchored(root);
        _requireAuthority(record.issuerId, root, false);
        if (record.status == Status.Revoked) revert AlreadyRevoked(root);
        if (record.status == Status.Suspended) revert AlreadySuspended(root);
        _setBatchStatus(record, root, Status.Suspended, reason);
    }

    /// @inheritdoc IAnchorRegistry
    function reinstateBatch(bytes32 root) external {
        Anchor storage record = _requireAnchored(root);
        _requireAuthority(record.issuerId, root, true);
        if (record.status != Status.Suspended) revert NotSuspended(root);
        _setBatchStatus(record, root, Status.Valid, 0);
    }

    /// @inheritdoc IAnchorRegistry
    function revokeCredential(
        bytes32 root,
        bytes32 targetHash,
        bytes32 subjectHash,
        bytes32[] calldata proof,
        uint8 reason
    ) external {
        (bytes32 leaf, uint32 issuerId, CredentialStatus storage current) =
            _provenCredential(root, targetHash, subjectHash, proof);
        if (current.status == Status.Revoked) revert AlreadyRevoked(leaf);
        _setCredentialStatus(current, leaf, root, issuerId, Status.Revoked, reason);
    }

    /// @inheritdoc IAnchorRegistry
    function suspendCredential(
        bytes32 root,
        bytes32 targetHash,
        bytes32 subjectHash,
        bytes32[] calldata proof,
        uint8 reason
    ) external {
        (bytes32 leaf, uint32 issuerId, CredentialStatus storage current) =
            _provenCredential(root, targetHash, subjectHash, proof);
        if (current.status == Status.Revoked) revert AlreadyRevoked(leaf);
        if (current.status == Status.Suspended) revert AlreadySuspended(leaf);
        _setCredentialStatus(current, leaf, root, issuerId, Status.Suspended, reason);
    }

    /// @inheritdoc IAnchorRegistry
    function reinstateCredential(bytes32 root, bytes32 leaf) external {
        Anchor storage record = _requireAnchored(root);
        uint32 issuerId = record.issuerId;
        _requireAuthority(issuerId, root, true);
        CredentialStatus storage current = _credentialStatus[root][leaf];
        if (current.status != Status.Suspended) revert NotSuspended(leaf);
        _setCredentialStatus(current, leaf, root, issuerId, Status.None, 0);
    }

    /// @inheritdoc IAnchorRegistry
    function anchorOf(bytes32 root) external view returns (Anchor memory) {
        return _anchors[root];
    }

    /// @inheritdoc IAnchorRegistry
    function credentialStatusOf(bytes32 root, bytes32 leaf) external view returns (CredentialStatus memory) {
        return _credentialStatus[root][leaf];
    }

    /// @inheritdoc IAnchorRegistry
    function statusOf(bytes32 root, bytes32 leaf) public view returns (Status status, uint8 reason) {
        Anchor storage record = _anchors[root];
        if (record.status != Status.Valid) return (record.status, record.reason);
        CredentialStatus storage override_ = _credentialStatus[root][leaf];
        if (override_.status == Status.None) return (Status.Valid, 0);
        return (override_.status, override_.reason);
    }

    /// @inheritdoc IAnchorRegistry
    function isValid(bytes32 root, bytes32 targetHash, bytes32 subjectHash, bytes32[] calldata proof)
        external
        view
        returns (bool)
    {
        bytes32 leaf = leafHash(targetHash, subjectHash);
        if (!MerkleProof.verifyCalldata(proof, root, leaf)) return false;
        (Status status,) = statusOf(root, leaf);
        return status == Status.Valid;
    }

    /// @inheritdoc IAnchorRegistry
    function leafHash(bytes32 targetHash, bytes32 subjectHash) public pure returns (bytes32) {
        return keccak256(bytes.concat(keccak256(abi.encode(targetHash, subjectHash))));
    }

    /// @inheritdoc IAnchorRegistry
    function issuerRegistry() external view returns (address) {
        return address(_issuers);
    }

    function _provenCredential(bytes32 root, bytes32 targetHash, bytes32 subjectHash, bytes32[] calldata proof)
        private
        view
        returns (bytes32 leaf, uint32 issuerId, CredentialStatus storage current)
    {
        Anchor storage record = _requireAnchored(root);
        issuerId = record.issuerId;
        _requireAuthority(issuerId, root, false);
        leaf = leafHash(targetHash, subjectHash);
        if (!MerkleProof.verifyCalldata(proof, root, leaf)) revert InvalidMerkleProof(root, leaf);
        current = _credentialStatus[root][leaf];
    }

    function _setBatchStatus(Anchor storage record, bytes32 root, Status status, uint8 reason) private {
        record.status = status;
        record.reason = reason;
        emit BatchStatusChanged(root, record.issuerId, status, reason, msg.sender);
    }

    function _setCredentialStatus(
        CredentialStatus storage current,
        bytes32 leaf,
        bytes32 root,
        uint32 issuerId,
        Status status,
        uint8 reason
    ) private {
        current.status = status;
        current.reason = reason;
        current.timestamp = uint64(block.timestamp);
        emit CredentialStatusChanged(leaf, root, issuerId, status, reason, msg.sender);
    }

    function _requireAnchored(bytes32 root) private view returns (Anchor storage record) {
        record = _anchors[root];
        if (record.status == Status.None) revert RootNotAnchored(root);
    }

    /// @dev Governance, or any current key of the anchoring issuer. A suspended issuer keeps the
    /// protective powers (revoke, suspend) but may not reinstate.
    function _requireAuthority(uint32 issuerId, bytes32 root, bool reinstating) private view {
        if (hasRole(GOVERNANCE_ROLE, msg.sender)) return;
        if (_issuers.issuerOf(msg.sender) != issuerId) revert NotStatusAuthority(msg.sender, root);
        if (reinstating && _issuers.issuerStatus(issuerId) != IIssuerRegistry.IssuerStatus.Active) {
            revert IssuerSuspendedCannotReinstate(issuerId);
        }
    }
}

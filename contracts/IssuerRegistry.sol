// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {IIssuerRegistry} from "./interfaces/IIssuerRegistry.sol";

/// @title IssuerRegistry
/// @notice See {IIssuerRegistry}.
contract IssuerRegistry is IIssuerRegistry, AccessControl {
    /// @notice Role of the governance body that registers and supervises issuers.
    bytes32 public constant GOVERNANCE_ROLE = keccak256("GOVERNANCE_ROLE");

    /// @dev The one-slot part of an issuer: everything {authorise} reads.
    struct IssuerCore {
        uint16 keyVersion;
        Suite suite;
        IssuerStatus status;
        uint8 suspensionReason;
        uint64 activeFrom;
        uint64 activeUntil;
    }

    struct IssuerInfo {
        string name;
        string uscc;
    }

    uint32 private _issuerCount;
    mapping(uint32 issuerId => IssuerCore core) private _core;
    mapping(uint32 issuerId => IssuerInfo info) private _info;
    mapping(uint32 issuerId => mapping(uint16 keyVersion => IssuerKey key)) private _keys;
    mapping(address account => uint32 issuerId) private _issuerOf;
    mapping(uint32 issuerId => mapping(uint16 credentialType => bool allowed)) private _allowed;

    /// @param governance the first holder of DEFAULT_ADMIN_ROLE and GOVERNANCE_ROLE.
    constructor(address governance) {
        _grantRole(DEFAULT_ADMIN_ROLE, governance);
        _grantRole(GOVERNANCE_ROLE, governance);
    }

    /// @notice Version of this contract's interface.
    function version() external pure returns (string memory) {
        return "1.0.0";
    }

    /// @inheritdoc IIssuerRegistry
    function registerIssuer(
        address account,
        string calldata name,
        string calldata uscc,
        uint16[] calldata credentialTypes,
        Suite suite,
        bytes calldata sm2PublicKey,
        uint64 activeFrom,
        uint64 activeUntil
    ) external onlyRole(GOVERNANCE_ROLE) returns (uint32 issuerId) {
        if (bytes(uscc).length != 18) revert InvalidUscc(uscc);
        if (activeUntil != 0 && activeUntil <= activeFrom) {
            revert InvalidActivityWindow(activeFrom, activeUntil);
        }
        _checkKey(account, suite, sm2PublicKey);

        issuerId = ++_issuerCount;
        _core[issuerId] = IssuerCore({
            keyVersion: 1,
            suite: suite,
            status: IssuerStatus.Active,
            suspensionReason: 0,
            activeFrom: activeFrom,
            activeUntil: activeUntil
        });
        _info[issuerId] = IssuerInfo({name: name, uscc: uscc});
        _keys[issuerId][1] = IssuerKey({
            account: account,
            validFrom: uint64(block.timestamp),
            validUntil: 0,
            sm2PublicKey: sm2PublicKey
        });
        _issuerOf[account] = issuerId;
        emit IssuerRegistered(issuerId, account, suite, activeFrom, activeUntil, name, uscc, sm2PublicKey);
        for (uint256 i = 0; i < credentialTypes.length; ++i) {
            _setCredentialType(issuerId, credentialTypes[i], true);
        }
    }

    /// @inheritdoc IIssuerRegistry
    function setCredentialType(uint32 issuerId, uint16 credentialType, bool allowed)
        external
        onlyRole(GOVERNANCE_ROLE)
    {
        _requireKnown(issuerId);
        _setCredentialType(issuerId, credentialType, allowed);
    }

    /// @inheritdoc IIssuerRegistry
    function suspendIssuer(uint32 issuerId, uint8 reason) external onlyRole(GOVERNANCE_ROLE) {
        IssuerCore storage core = _requireKnown(issuerId);
        if (core.status != IssuerStatus.Active) revert IssuerStatusMismatch(issuerId, core.status);
        core.status = IssuerStatus.Suspended;
        core.suspensionReason = reason;
        emit IssuerSuspended(issuerId, reason);
    }

    /// @inheritdoc IIssuerRegistry
    function reinstateIssuer(uint32 issuerId) external onlyRole(GOVERNANCE_ROLE) {
        IssuerCore storage core = _requireKnown(issuerId);
        if (core.status != IssuerStatus.Suspended) revert IssuerStatusMismatch(issuerId, core.status);
        core.status = IssuerStatus.Active;
        core.suspensionReason = 0;
        emit IssuerReinstated(issuerId);
    }

    /// @inheritdoc IIssuerRegistry
    function rotateKey(uint32 issuerId, address newAccount, bytes calldata newSm2PublicKey) external {
        IssuerCore storage core = _requireKnown(issuerId);
        uint16 oldVersion = core.keyVersion;
        IssuerKey storage oldKey = _keys[issuerId][oldVersion];
        address previous = oldKey.account;
        if (msg.sender != previous && !hasRole(GOVERNANCE_ROLE, msg.sender)) {
            revert NotIssuerOrGovernance(msg.sender, issuerId);
        }
        _checkKey(newAccount, core.suite, newSm2PublicKey);

        uint16 newVersion = oldVersion + 1;
        core.keyVersion = newVersion;
        oldKey.validUntil = uint64(block.timestamp);
        _keys[issuerId][newVersion] = IssuerKey({
            account: newAccount,
            validFrom: uint64(block.timestamp),
            validUntil: 0,
            sm2PublicKey: newSm2PublicKey
        });
        delete _issuerOf[previous];
        _issuerOf[newAccount] = issuerId;
        emit IssuerKeyRotated(issuerId, newVersion, newAccount, previous, newSm2PublicKey);
    }

    /// @inheritdoc IIssuerRegistry
    function issuer(uint32 issuerId) external view returns (Issuer memory) {
        IssuerCore storage core = _requireKnown(issuerId);
        IssuerInfo storage info = _info[issuerId];
        return Issuer({
            keyVersion: core.keyVersion,
            suite: core.suite,
            status: core.status,
            suspensionReason: core.suspensionReason,
            activeFrom: core.activeFrom,
            activeUntil: core.activeUntil,
            account: _keys[issuerId][core.keyVersion].account,
            name: info.name,
            uscc: info.uscc
        });
    }

    /// @inheritdoc IIssuerRegistry
    function issuerKey(uint32 issuerId, uint16 keyVersion) external view returns (IssuerKey memory) {
        IssuerCore storage core = _requireKnown(issuerId);
        if (keyVersion == 0 || keyVersion > core.keyVersion) revert IssuerUnknown(issuerId);
        return _keys[issuerId][keyVersion];
    }

    /// @inheritdoc IIssuerRegistry
    function issuerStatus(uint32 issuerId) external view returns (IssuerStatus) {
        return _core[issuerId].status;
    }

    /// @inheritdoc IIssuerRegistry
    function issuerOf(address account) external view returns (uint32) {
        return _issuerOf[account];
    }

    /// @inheritdoc IIssuerRegistry
    function isAllowed(uint32 issuerId, uint16 credentialType) external view returns (bool) {
        return _allowed[issuerId][credentialType];
    }

    /// @inheritdoc IIssuerRegistry
    function issuerCount() external view returns (uint32) {
        return _issuerCount;
    }

    /// @inheritdoc IIssuerRegistry
    function authorise(address account, uint16 credentialType)
        external
        view
        returns (uint32 issuerId, uint16 keyVersion)
    {
        issuerId = _issuerOf[account];
        if (issuerId == 0) revert NotAnIssuer(account);
        IssuerCore storage core = _core[issuerId];
        if (core.status != IssuerStatus.Active) revert IssuerStatusMismatch(issuerId, core.status);
        uint64 nowTs = uint64(block.timestamp);
        if (nowTs < core.activeFrom || (core.activeUntil != 0 && nowTs >= core.activeUntil)) {
            revert IssuerOutsideActivityWindow(issuerId, nowTs);
        }
        if (!_allowed[issuerId][credentialType]) revert CredentialTypeNotAllowed(issuerId, credentialType);
        keyVersion = core.keyVersion;
    }

    function _setCredentialType(uint32 issuerId, uint16 credentialType, bool allowed) private {
        if (credentialType == 0) revert InvalidCredentialType(credentialType);
        _allowed[issuerId][credentialType] = allowed;
        emit CredentialTypeSet(issuerId, credentialType, allowed);
    }

    function _checkKey(address account, Suite suite, bytes calldata sm2PublicKey) private view {
        if (account == address(0)) revert InvalidAccount(account);
        uint32 holder = _issuerOf[account];
        if (holder != 0) revert AccountAlreadyRegistered(account, holder);
        uint256 expected = suite == Suite.Sm2Sm3 ? 64 : 0;
        if (sm2PublicKey.length != expected) revert InvalidSm2PublicKey(suite, sm2PublicKey.length);
    }

    function _requireKnown(uint32 issuerId) private view returns (IssuerCore storage core) {
        core = _core[issuerId];
        if (core.status == IssuerStatus.None) revert IssuerUnknown(issuerId);
    }
}

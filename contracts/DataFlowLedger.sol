// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {IAnchorRegistry} from "./interfaces/IAnchorRegistry.sol";
import {IDataFlowLedger} from "./interfaces/IDataFlowLedger.sol";

/// @title DataFlowLedger
/// @notice See {IDataFlowLedger}.
contract DataFlowLedger is IDataFlowLedger, AccessControl {
    /// @notice Role of the governance body that registers participants.
    bytes32 public constant GOVERNANCE_ROLE = keccak256("GOVERNANCE_ROLE");
    /// @notice Role of the data-customs regulator that decides flows.
    bytes32 public constant REGULATOR_ROLE = keccak256("REGULATOR_ROLE");
    /// @notice Credential type code of DataAssetCertificate (docs/FORMAT.md).
    uint16 public constant DATA_ASSET_CERTIFICATE = 3;

    IAnchorRegistry private immutable _anchors;

    uint64 private _flowCount;
    mapping(uint64 flowId => Flow record) private _flows;
    mapping(address account => bytes32 participantId) private _participantOf;

    constructor(address governance, IAnchorRegistry anchors) {
        _anchors = anchors;
        _grantRole(DEFAULT_ADMIN_ROLE, governance);
        _grantRole(GOVERNANCE_ROLE, governance);
    }

    /// @notice Version of this contract's interface.
    function version() external pure returns (string memory) {
        return "1.0.0";
    }

    /// @notice The anchor registry that asset proofs are checked against.
    function anchorRegistry() external view returns (address) {
        return address(_anchors);
    }

    /// @inheritdoc IDataFlowLedger
    function registerParticipant(address account, bytes32 participantId) external onlyRole(GOVERNANCE_ROLE) {
        if (account == address(0) || participantId == bytes32(0)) {
            revert InvalidParticipant(account, participantId);
        }
        _participantOf[account] = participantId;
        emit ParticipantRegistered(account, participantId);
    }

    /// @inheritdoc IDataFlowLedger
    function declareFlow(Declaration calldata declaration, AssetProof calldata asset)
        external
        returns (uint64 flowId)
    {
        bytes32 exporterId = _participantOf[msg.sender];
        if (exporterId == bytes32(0)) revert NotAParticipant(msg.sender);
        if (
            declaration.fromJurisdiction == bytes8(0) || declaration.toJurisdiction == bytes8(0)
                || declaration.fromJurisdiction == declaration.toJurisdiction
        ) revert InvalidJurisdictions(declaration.fromJurisdiction, declaration.toJurisdiction);
        if (declaration.importerId == exporterId) revert ImporterIsExporter(exporterId);

        bytes32 leaf = _anchors.leafHash(asset.targetHash, asset.subjectHash);
        if (!_anchors.isValid(asset.root, asset.targetHash, asset.subjectHash, asset.proof)) {
            revert AssetNotValid(asset.root, leaf);
        }
        uint16 credentialType = _anchors.anchorOf(asset.root).credentialType;
        if (credentialType != DATA_ASSET_CERTIFICATE) revert NotADataAssetCertificate(asset.root, credentialType);

        uint64 parentId = declaration.parentFlowId;
        if (parentId == 0) {
            if (asset.subjectHash != exporterId) revert NotAssetHolder(msg.sender, asset.subjectHash);
        } else {
            Flow storage parent = _flows[parentId];
            if (parent.decision == Decision.None) revert UnknownFlow(parentId);
            if (parent.decision == Decision.Rejected) revert ParentFlowRejected(parentId);
            if (parent.importerId != exporterId) revert NotParentImporter(msg.sender, parentId);
            if (parent.assetLeaf != leaf) revert AssetMismatch(parentId, parent.assetLeaf, leaf);
            if (parent.toJurisdiction != declaration.fromJurisdiction) {
                revert JurisdictionMismatch(parentId, parent.toJurisdiction, declaration.fromJurisdiction);
            }
        }

        flowId = ++_flowCount;
        _flows[flowId] = Flow({
            assetLeaf: leaf,
            assetRoot: asset.root,
            exporterId: exporterId,
            importerId: declaration.importerId,
            exporter: msg.sender,
            parentFlowId: parentId,
            declaredAt: uint64(block.timestamp),
            fromJurisdiction: declaration.fromJurisdiction,
            toJurisdiction: declaration.toJurisdiction,
            decision: Decision.Pending,
            legalBasis: declaration.legalBasis,
            personalInformation: declaration.personalInformation,
            decidedAt: 0,
            payloadDigest: declaration.payloadDigest,
            declarationHash: declaration.declarationHash
        });
        emit FlowDeclared(flowId, leaf, parentId, msg.sender, exporterId, asset.root, declaration);
    }

    /// @inheritdoc IDataFlowLedger
    function decideFlow(uint64 flowId, Decision decision, string calldata reason)
        external
        onlyRole(REGULATOR_ROLE)
    {
        if (decision != Decision.Approved && decision != Decision.Rejected) revert InvalidDecision(decision);
        Flow storage record = _flows[flowId];
        if (record.decision == Decision.None) revert UnknownFlow(flowId);
        if (record.decision != Decision.Pending) revert AlreadyDecided(flowId, record.decision);
        record.decision = decision;
        record.decidedAt = uint64(block.timestamp);
        emit FlowDecided(flowId, decision, msg.sender, reason);
    }

    /// @inheritdoc IDataFlowLedger
    function flow(uint64 flowId) external view returns (Flow memory) {
        Flow storage record = _flows[flowId];
        if (record.decision == Decision.None) revert UnknownFlow(flowId);
        return record;
    }

    /// @inheritdoc IDataFlowLedger
    function flowCount() external view returns (uint64) {
        return _flowCount;
    }

    /// @inheritdoc IDataFlowLedger
    function participantOf(address account) external view returns (bytes32) {
        return _participantOf[account];
    }
}

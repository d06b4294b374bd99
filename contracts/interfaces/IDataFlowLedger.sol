// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title Cross-border data-flow ledger ("data customs")
/// @notice A registered participant declares a cross-border flow of a certified data asset: the
/// asset certificate's leaf is proven on-chain to be in an anchored, valid batch of data asset
/// certificates, and the declarer must be the certificate's holder (an original flow) or the
/// importer of the parent flow (an onward transfer). A regulator approves or rejects each flow.
/// Full declarations live off-chain; the ledger keeps their hash and the fields rules need.
interface IDataFlowLedger {
    /// @notice A flow's decision. `Pending` until a regulator decides.
    enum Decision {
        None,
        Pending,
        Approved,
        Rejected
    }

    /// @notice Legal basis for the export (PIPL art. 38 and the Greater Bay Area standard contract).
    enum LegalBasis {
        SecurityAssessment,
        StandardContract,
        Certification,
        GbaStandardContract,
        Exemption
    }

    /// @notice The asset certificate and its Merkle proof against an anchored root.
    struct AssetProof {
        bytes32 root;
        bytes32 targetHash;
        bytes32 subjectHash; // keccak256 of the holder's identifier; must match the declarer
        bytes32[] proof;
    }

    /// @notice The on-chain part of a declaration.
    struct Declaration {
        uint64 parentFlowId; // 0 for an original flow
        bytes32 importerId; // keccak256(utf8(importer identifier))
        bytes8 fromJurisdiction; // ISO 3166 code, ASCII, right-padded with zero bytes
        bytes8 toJurisdiction;
        LegalBasis legalBasis;
        bool personalInformation;
        uint32 personalInformationSubjects;
        uint64 volume; // bytes
        bytes32 purposeHash; // keccak256(utf8(purpose))
        bytes32 payloadDigest; // digest of the transferred payload
        bytes32 declarationHash; // digest of the full off-chain declaration (docs/FORMAT.md)
    }

    /// @notice A stored flow.
    struct Flow {
        bytes32 assetLeaf;
        bytes32 assetRoot;
        bytes32 exporterId;
        bytes32 importerId;
        address exporter;
        uint64 parentFlowId;
        uint64 declaredAt;
        bytes8 fromJurisdiction;
        bytes8 toJurisdiction;
        Decision decision;
        LegalBasis legalBasis;
        bool personalInformation;
        uint64 decidedAt;
        bytes32 payloadDigest;
        bytes32 declarationHash;
    }

    /// @notice `account` is not a registered participant.
    error NotAParticipant(address account);
    /// @notice The participant id is zero or the account is the zero address.
    error InvalidParticipant(address account, bytes32 participantId);
    /// @notice The asset certificate is not in an anchored, valid batch (or its proof fails).
    error AssetNotValid(bytes32 root, bytes32 leaf);
    /// @notice The proven credential is not a data asset certificate.
    error NotADataAssetCertificate(bytes32 root, uint16 credentialType);
    /// @notice The declarer is not the asset's holder.
    error NotAssetHolder(address account, bytes32 holderId);
    /// @notice `flowId` does not exist.
    error UnknownFlow(uint64 flowId);
    /// @notice The parent flow was rejected: no onward transfer.
    error ParentFlowRejected(uint64 parentFlowId);
    /// @notice The onward transfer's declarer is not the parent flow's importer.
    error NotParentImporter(address account, uint64 parentFlowId);
    /// @notice The onward transfer names another asset than its parent flow.
    error AssetMismatch(uint64 parentFlowId, bytes32 expectedLeaf, bytes32 leaf);
    /// @notice The onward transfer does not leave from where its parent arrived.
    error JurisdictionMismatch(uint64 parentFlowId, bytes8 expected, bytes8 actual);
    /// @notice From and to jurisdiction are equal or empty.
    error InvalidJurisdictions(bytes8 fromJurisdiction, bytes8 toJurisdiction);
    /// @notice The importer is the exporter.
    error ImporterIsExporter(bytes32 participantId);
    /// @notice The flow was decided already.
    error AlreadyDecided(uint64 flowId, Decision decision);
    /// @notice A decision must be Approved or Rejected.
    error InvalidDecision(Decision decision);

    /// @notice Emitted when governance registers (or re-points) a participant account.
    event ParticipantRegistered(address indexed account, bytes32 indexed participantId);
    /// @notice Emitted when a flow is declared.
    event FlowDeclared(
        uint64 indexed flowId,
        bytes32 indexed assetLeaf,
        uint64 indexed parentFlowId,
        address exporter,
        bytes32 exporterId,
        bytes32 assetRoot,
        Declaration declaration
    );
    /// @notice Emitted when a regulator decides a flow.
    event FlowDecided(uint64 indexed flowId, Decision indexed decision, address indexed regulator, string reason);

    /// @notice Registers `account` as participant `participantId` (keccak256 of its identifier,
    /// for a mainland enterprise its unified social credit code). Caller: GOVERNANCE_ROLE.
    function registerParticipant(address account, bytes32 participantId) external;

    /// @notice Declares a flow. Emits {FlowDeclared}.
    /// @return flowId the new flow's id, counting from 1.
    function declareFlow(Declaration calldata declaration, AssetProof calldata asset)
        external
        returns (uint64 flowId);

    /// @notice Approves or rejects a pending flow. Caller: REGULATOR_ROLE. Emits {FlowDecided}.
    function decideFlow(uint64 flowId, Decision decision, string calldata reason) external;

    /// @notice A flow. Reverts {UnknownFlow}.
    function flow(uint64 flowId) external view returns (Flow memory);

    /// @notice Number of flows (ids run from 1 to this).
    function flowCount() external view returns (uint64);

    /// @notice The participant id of `account` (zero if none).
    function participantOf(address account) external view returns (bytes32);
}

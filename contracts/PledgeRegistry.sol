// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";

/// @title PledgeRegistry
/// @notice Registration lifecycle and financing pledges (融资质押/抵押) of data assets.
///
/// An asset is keyed by `assetKey = keccak256(utf8(issuer.id + "/" + credentialSubject.assetId))`,
/// stable across a transfer (the re-issued certificate keeps issuer and assetId).
///
/// * The data authority registers an asset (a registration number per asset, unique in this
///   contract), and records its transfer, change and cancellation registrations; it or a court
///   opens and resolves disputes. A disputed or cancelled asset cannot be pledged or transferred.
/// * A pledge is registered with both parties' consent proven on-chain: the EIP-712 `Pledge`
///   signatures of the holder and the lender (secp256k1). For a holder whose key the EVM cannot
///   check (SM2), the data authority registers the pledge with the lender's signature and the
///   digest of the holder's consent it checked off-chain (`pledgeAttested`).
/// * One active pledge per asset, unless the asset was registered with `ranks > 1` (ranked
///   pledges): then one active pledge per rank. A second pledge of a taken rank is refused.
/// * The lender releases its pledge (itself, or by an EIP-712 `Release` signature relayed by
///   anyone); the data authority or a court cancels one.
///
/// Storage (docs/FORMAT.md, "Pledges"): the asset record is ONE slot at
/// `keccak256(assetKey . slot(_assets))`; the pledge of rank r is two slots from
/// `keccak256(uint256(r) . keccak256(assetKey . slot(_pledges)))` — so the pledge state of an
/// asset with one rank is three slots, provable with eth_getProof.
contract PledgeRegistry is AccessControl, EIP712 {
    bytes32 public constant DATA_AUTHORITY_ROLE = keccak256("DATA_AUTHORITY_ROLE");
    bytes32 public constant COURT_ROLE = keccak256("COURT_ROLE");

    bytes32 public constant PLEDGE_TYPEHASH = keccak256(
        "Pledge(bytes32 assetKey,uint8 rank,address holder,address lender,bytes32 loanRef,uint32 nonce,uint64 deadline)"
    );
    bytes32 public constant RELEASE_TYPEHASH =
        keccak256("Release(bytes32 assetKey,uint8 rank,address lender,uint32 nonce)");

    enum AssetState { None, Registered, Cancelled }
    enum PledgeState { None, Active, Released, Cancelled }

    /// @dev Exactly one slot: 20 + 4 + 1 + 1 + 1 + 1 + 4 = 32 bytes.
    struct Asset {
        address holder;
        uint32 registrationNo;
        uint8 ranks; // how many pledges may be active at once (1 = no ranked pledges)
        uint8 activePledges;
        bool disputed;
        AssetState state;
        uint32 nonce; // bumped on every pledge, release and cancellation: signatures are single-use
    }

    /// @dev Two slots: lender, since, state; then loanRef.
    struct Pledge {
        address lender;
        uint64 since;
        PledgeState state;
        bytes32 loanRef;
    }

    uint32 private _lastRegistrationNo;
    /// @dev Storage slots of these mappings are normative (docs/FORMAT.md, "Pledges").
    mapping(bytes32 assetKey => Asset record) private _assets;
    mapping(bytes32 assetKey => mapping(uint8 rank => Pledge pledge)) private _pledges;

    event AssetRegistered(bytes32 indexed assetKey, uint32 indexed registrationNo, address holder, uint8 ranks);
    event AssetTransferred(
        bytes32 indexed assetKey, uint32 indexed registrationNo, address from, address to, bytes32 newCertificate
    );
    event AssetChanged(bytes32 indexed assetKey, uint32 indexed registrationNo, bytes32 changeDigest);
    event AssetCancelled(bytes32 indexed assetKey, uint32 indexed registrationNo, uint8 reason);
    event DisputeOpened(bytes32 indexed assetKey, uint32 indexed registrationNo, address by, bytes32 caseRef);
    event DisputeResolved(bytes32 indexed assetKey, uint32 indexed registrationNo, address by, bytes32 caseRef);
    event Pledged(
        bytes32 indexed assetKey,
        uint8 rank,
        address indexed lender,
        address holder,
        bytes32 loanRef,
        bytes32 holderConsent
    );
    event PledgeReleased(bytes32 indexed assetKey, uint8 rank, address indexed lender);
    event PledgeCancelled(bytes32 indexed assetKey, uint8 rank, address indexed lender, address by, uint8 reason);

    error InvalidAssetKey();
    error InvalidRanks(uint8 ranks);
    error InvalidHolder(address holder);
    error InvalidLender(address lender);
    error AssetAlreadyRegistered(bytes32 assetKey);
    error AssetNotRegistered(bytes32 assetKey);
    error AssetIsCancelled(bytes32 assetKey);
    error AssetDisputed(bytes32 assetKey);
    error NotDisputed(bytes32 assetKey);
    error AssetPledged(bytes32 assetKey, uint8 activePledges);
    error InvalidRank(bytes32 assetKey, uint8 rank, uint8 ranks);
    error AlreadyPledged(bytes32 assetKey, uint8 rank, address lender);
    error NotPledged(bytes32 assetKey, uint8 rank);
    error NotLender(address caller, address lender);
    error ConsentExpired(uint64 deadline);
    error BadHolderSignature(address signer, address holder);
    error BadLenderSignature(address signer, address lender);
    error NotAuthority(address caller);

    constructor(address governance) EIP712("certledger-pledges", "1") {
        _grantRole(DEFAULT_ADMIN_ROLE, governance);
        _grantRole(DATA_AUTHORITY_ROLE, governance);
    }

    function version() external pure returns (string memory) {
        return "1.0.0";
    }

    // -- registration lifecycle ---------------------------------------------------------------

    /// @notice First registration (首次登记) of an asset to `holder`; assigns its registration number.
    function registerAsset(bytes32 assetKey, address holder, uint8 ranks)
        external
        onlyRole(DATA_AUTHORITY_ROLE)
        returns (uint32 registrationNo)
    {
        if (assetKey == bytes32(0)) revert InvalidAssetKey();
        if (holder == address(0)) revert InvalidHolder(holder);
        if (ranks == 0) revert InvalidRanks(ranks);
        if (_assets[assetKey].state != AssetState.None) revert AssetAlreadyRegistered(assetKey);
        registrationNo = ++_lastRegistrationNo;
        _assets[assetKey] = Asset({
            holder: holder,
            registrationNo: registrationNo,
            ranks: ranks,
            activePledges: 0,
            disputed: false,
            state: AssetState.Registered,
            nonce: 0
        });
        emit AssetRegistered(assetKey, registrationNo, holder, ranks);
    }

    /// @notice Transfer registration (转移登记): the certificate is re-issued to `to`
    /// (`newCertificate` = its target hash). Refused while pledged or disputed.
    function transferAsset(bytes32 assetKey, address to, bytes32 newCertificate)
        external
        onlyRole(DATA_AUTHORITY_ROLE)
    {
        Asset storage a = _usable(assetKey);
        if (a.activePledges != 0) revert AssetPledged(assetKey, a.activePledges);
        if (to == address(0)) revert InvalidHolder(to);
        address from = a.holder;
        a.holder = to;
        emit AssetTransferred(assetKey, a.registrationNo, from, to, newCertificate);
    }

    /// @notice Change registration (变更登记): `changeDigest` is the digest of the changed record.
    function changeAsset(bytes32 assetKey, bytes32 changeDigest) external onlyRole(DATA_AUTHORITY_ROLE) {
        Asset storage a = _registered(assetKey);
        if (a.state == AssetState.Cancelled) revert AssetIsCancelled(assetKey);
        emit AssetChanged(assetKey, a.registrationNo, changeDigest);
    }

    /// @notice Cancellation registration (注销登记). Refused while pledged.
    function cancelAsset(bytes32 assetKey, uint8 reason) external onlyRole(DATA_AUTHORITY_ROLE) {
        Asset storage a = _registered(assetKey);
        if (a.state == AssetState.Cancelled) revert AssetIsCancelled(assetKey);
        if (a.activePledges != 0) revert AssetPledged(assetKey, a.activePledges);
        a.state = AssetState.Cancelled;
        emit AssetCancelled(assetKey, a.registrationNo, reason);
    }

    /// @notice Dispute registration (异议登记): blocks pledging and transfer until resolved.
    function openDispute(bytes32 assetKey, bytes32 caseRef) external {
        _requireAuthority();
        Asset storage a = _registered(assetKey);
        if (a.disputed) revert AssetDisputed(assetKey);
        a.disputed = true;
        emit DisputeOpened(assetKey, a.registrationNo, msg.sender, caseRef);
    }

    function resolveDispute(bytes32 assetKey, bytes32 caseRef) external {
        _requireAuthority();
        Asset storage a = _registered(assetKey);
        if (!a.disputed) revert NotDisputed(assetKey);
        a.disputed = false;
        emit DisputeResolved(assetKey, a.registrationNo, msg.sender, caseRef);
    }

    // -- pledges --------------------------------------------------------------------------------

    /// @notice Register a pledge with both parties' EIP-712 `Pledge` signatures (anyone relays).
    function pledge(
        bytes32 assetKey,
        uint8 rank,
        address lender,
        bytes32 loanRef,
        uint64 deadline,
        bytes calldata holderSig,
        bytes calldata lenderSig
    ) external {
        Asset storage a = _usable(assetKey);
        bytes32 digest = _pledgeDigest(assetKey, rank, a.holder, lender, loanRef, a.nonce, deadline);
        address h = ECDSA.recover(digest, holderSig);
        if (h != a.holder) revert BadHolderSignature(h, a.holder);
        _checkLender(digest, lender, lenderSig);
        _pledge(a, assetKey, rank, lender, loanRef, deadline, bytes32(0));
    }

    /// @notice Register a pledge whose holder consent the data authority checked off-chain (an SM2
    /// holder key, which the EVM cannot verify); `holderConsent` is the digest of that consent.
    function pledgeAttested(
        bytes32 assetKey,
        uint8 rank,
        address lender,
        bytes32 loanRef,
        uint64 deadline,
        bytes calldata lenderSig,
        bytes32 holderConsent
    ) external onlyRole(DATA_AUTHORITY_ROLE) {
        Asset storage a = _usable(assetKey);
        if (holderConsent == bytes32(0)) revert BadHolderSignature(address(0), a.holder);
        bytes32 digest = _pledgeDigest(assetKey, rank, a.holder, lender, loanRef, a.nonce, deadline);
        _checkLender(digest, lender, lenderSig);
        _pledge(a, assetKey, rank, lender, loanRef, deadline, holderConsent);
    }

    /// @notice The lender releases its pledge: sent by the lender (empty `lenderSig`) or relayed
    /// with the lender's EIP-712 `Release` signature.
    function release(bytes32 assetKey, uint8 rank, bytes calldata lenderSig) external {
        Asset storage a = _registered(assetKey);
        Pledge storage p = _pledges[assetKey][rank];
        if (p.state != PledgeState.Active) revert NotPledged(assetKey, rank);
        address lender = p.lender;
        if (lenderSig.length == 0) {
            if (msg.sender != lender) revert NotLender(msg.sender, lender);
        } else {
            bytes32 digest = _hashTypedDataV4(keccak256(abi.encode(RELEASE_TYPEHASH, assetKey, rank, lender, a.nonce)));
            address s = ECDSA.recover(digest, lenderSig);
            if (s != lender) revert BadLenderSignature(s, lender);
        }
        p.state = PledgeState.Released;
        a.activePledges -= 1;
        a.nonce += 1;
        emit PledgeReleased(assetKey, rank, lender);
    }

    /// @notice The data authority or a court cancels a pledge.
    function cancelPledge(bytes32 assetKey, uint8 rank, uint8 reason) external {
        _requireAuthority();
        Asset storage a = _registered(assetKey);
        Pledge storage p = _pledges[assetKey][rank];
        if (p.state != PledgeState.Active) revert NotPledged(assetKey, rank);
        p.state = PledgeState.Cancelled;
        a.activePledges -= 1;
        a.nonce += 1;
        emit PledgeCancelled(assetKey, rank, p.lender, msg.sender, reason);
    }

    // -- views ----------------------------------------------------------------------------------

    function assetOf(bytes32 assetKey) external view returns (Asset memory) {
        return _assets[assetKey];
    }

    function pledgeOf(bytes32 assetKey, uint8 rank) external view returns (Pledge memory) {
        return _pledges[assetKey][rank];
    }

    /// @notice Whether the asset has an active pledge (of any rank).
    function isPledged(bytes32 assetKey) external view returns (bool) {
        return _assets[assetKey].activePledges != 0;
    }

    function lastRegistrationNo() external view returns (uint32) {
        return _lastRegistrationNo;
    }

    /// @notice The EIP-712 digest both parties sign for a pledge at the asset's current nonce.
    function pledgeDigest(bytes32 assetKey, uint8 rank, address lender, bytes32 loanRef, uint64 deadline)
        external
        view
        returns (bytes32)
    {
        Asset storage a = _assets[assetKey];
        return _pledgeDigest(assetKey, rank, a.holder, lender, loanRef, a.nonce, deadline);
    }

    function releaseDigest(bytes32 assetKey, uint8 rank) external view returns (bytes32) {
        return _hashTypedDataV4(
            keccak256(abi.encode(RELEASE_TYPEHASH, assetKey, rank, _pledges[assetKey][rank].lender, _assets[assetKey].nonce))
        );
    }

    // -- internals ------------------------------------------------------------------------------

    function _pledge(
        Asset storage a,
        bytes32 assetKey,
        uint8 rank,
        address lender,
        bytes32 loanRef,
        uint64 deadline,
        bytes32 holderConsent
    ) private {
        if (block.timestamp > deadline) revert ConsentExpired(deadline);
        if (rank == 0 || rank > a.ranks) revert InvalidRank(assetKey, rank, a.ranks);
        Pledge storage p = _pledges[assetKey][rank];
        if (p.state == PledgeState.Active) revert AlreadyPledged(assetKey, rank, p.lender);
        if (lender == a.holder) revert InvalidLender(lender);
        _pledges[assetKey][rank] =
            Pledge({lender: lender, since: uint64(block.timestamp), state: PledgeState.Active, loanRef: loanRef});
        a.activePledges += 1;
        a.nonce += 1;
        emit Pledged(assetKey, rank, lender, a.holder, loanRef, holderConsent);
    }

    function _pledgeDigest(
        bytes32 assetKey,
        uint8 rank,
        address holder,
        address lender,
        bytes32 loanRef,
        uint32 nonce,
        uint64 deadline
    ) private view returns (bytes32) {
        return _hashTypedDataV4(
            keccak256(abi.encode(PLEDGE_TYPEHASH, assetKey, rank, holder, lender, loanRef, nonce, deadline))
        );
    }

    function _checkLender(bytes32 digest, address lender, bytes calldata lenderSig) private pure {
        if (lender == address(0)) revert InvalidLender(lender);
        address s = ECDSA.recover(digest, lenderSig);
        if (s != lender) revert BadLenderSignature(s, lender);
    }

    function _registered(bytes32 assetKey) private view returns (Asset storage a) {
        a = _assets[assetKey];
        if (a.state == AssetState.None) revert AssetNotRegistered(assetKey);
    }

    /// @dev Registered, not cancelled, not disputed.
    function _usable(bytes32 assetKey) private view returns (Asset storage a) {
        a = _registered(assetKey);
        if (a.state == AssetState.Cancelled) revert AssetIsCancelled(assetKey);
        if (a.disputed) revert AssetDisputed(assetKey);
    }

    function _requireAuthority() private view {
        if (!hasRole(DATA_AUTHORITY_ROLE, msg.sender) && !hasRole(COURT_ROLE, msg.sender)) {
            revert NotAuthority(msg.sender);
        }
    }
}

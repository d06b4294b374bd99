"""`certledger demo`, the attack step (issue 18): the registry operator's keystore passphrase is stolen.

The thief holds the operator key and every custodial keystore. It forges a trust bundle that says a
revoked certificate is fine, and mints a business licence for an issuer that keeps its key in its own
signer. A bank pinning only the operator key is fooled by both; a bank in validator mode
(``certledger-verify --validators``, the chain's four validators pinned) refuses both, because anchors
and status are proven from state the validators sealed (docs/FORMAT.md §14, §16)."""

from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

CERTLEDGER = Path(sys.executable).parent / "certledger"
OWN_SIGNER_ISSUER = dict(
    name="佛山市市场监督管理局 Foshan Market Regulation Administration (own signer)",
    identifier="11440600MB2F00001",
    jurisdiction="CN-GD",
    roles=["issuer"],
    suite="secp256k1",
    credentialTypes=["BusinessLicence"],
)


def _start_signer(home: Path, chain_id: int, anchor_registry: str) -> tuple[subprocess.Popen, dict[str, Any]]:
    """The issuer's own ``certledger signer`` (its key made here, in ``home``; never the registry's)."""
    from ledger_node.node import free_port

    home.mkdir(parents=True, exist_ok=True)
    (home / "passphrase").write_text("the Foshan bureau's own secret\n")
    keys = home / "keys"
    if not (keys / "keystore.json").exists():
        subprocess.run(
            [
                str(CERTLEDGER),
                "signer",
                "new-key",
                "--out",
                str(keys),
                "--passphrase-file",
                str(home / "passphrase"),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
    from eth_account import Account

    address = Account.decrypt(
        json.loads((keys / "keystore.json").read_text()), "the Foshan bureau's own secret"
    )
    address = Account.from_key(address).address.lower()
    (home / "policy.json").write_text(
        json.dumps({"chainId": chain_id, "anchorRegistry": anchor_registry, "credentialTypes": [1]})
    )
    port = free_port()
    with open(home / "signer.out", "ab") as log:
        proc = subprocess.Popen(
            [
                str(CERTLEDGER),
                "signer",
                "run",
                "--keystore",
                str(keys / "keystore.json"),
                "--passphrase-file",
                str(home / "passphrase"),
                "--policy",
                str(home / "policy.json"),
                "--log",
                str(home / "signing-log.jsonl"),
                "--port",
                str(port),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    import httpx

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the issuer's signer exited: {(home / 'signer.out').read_text()[-500:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/upcheck", timeout=1).text == "OK":
                return proc, {"url": f"http://127.0.0.1:{port}", "address": address}
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGTERM)
    raise RuntimeError("the issuer's signer did not come up")


async def _own_signer_issuer(ctx, call, admin: str, settings, with_check) -> dict[str, Any]:
    """The Foshan regulator, onboarded with its own signer (reused on a second run)."""
    spec = dict(OWN_SIGNER_ISSUER, identifier=with_check(OWN_SIGNER_ISSUER["identifier"]))
    existing = {o["identifier"]: o for o in (await call("GET", "/v1/organisations", admin))["items"]}
    if spec["identifier"] in existing:
        return existing[spec["identifier"]]
    proc, ref = _start_signer(
        settings.data_dir / "demo-foshan-signer",
        ctx.deployment.chain_id,
        ctx.deployment.contracts["anchorRegistry"].lower(),
    )
    try:
        return (await call("POST", "/v1/organisations", admin, json={**spec, "signer": ref}))["organisation"]
    finally:  # onboarding checks the signer holds the address; the demo issues nothing with it
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)


async def attack_story(
    ctx, call, keys: dict[str, str], admin: str, out: Path, settings, *, say, verify, with_check
) -> None:
    from ledger_node.node import dev_validator_set
    from scripts.samples import business_licence_record
    from verifier import (
        StandardMerkleTree,
        assemble_holder_copy,
        eth_address,
        prepare_credential,
        sign_batch,
        sign_trust_bundle,
    )
    from verifier.issuance import build_document, encode_status_list

    chain_id = ctx.deployment.chain_id
    registry = ctx.deployment.contracts["anchorRegistry"].lower()
    victim = await _own_signer_issuer(ctx, call, admin, settings, with_check)  # before the bundle is taken
    (out / "validators.json").write_text(json.dumps(dev_validator_set(chain_id), indent=1))
    say(
        "the bank pins the chain's four validators (validators.json: `certledger validators export --dev`; "
        "on Besu, `--genesis`) and takes a bundle carrying sealed proofs (`certledger bundle export --proofs`)"
    )
    bundle = await call("GET", "/v1/trust-bundle?proofs=true", keys["bank"])
    (out / "trust-bundle-proofs.json").write_text(json.dumps(bundle, ensure_ascii=False))
    say(
        f"trust-bundle-proofs.json: {len(json.dumps(bundle)):,} bytes, anchors and status of every credential "
        f"proven at block {bundle['block']['number']}"
    )

    # 1. the thief's bundle: the revocation list emptied, re-signed with the stolen operator key
    operator_key = bytes.fromhex(ctx.operator_key[2:])
    forged = copy.deepcopy(bundle)
    forged["statusLists"]["revocation"] = {"encodedList": encode_status_list([], 131_072), "details": {}}
    forged = sign_trust_bundle(forged, operator_key)
    (out / "forged-trust-bundle.json").write_text(json.dumps(forged, ensure_ascii=False))
    operator = eth_address(operator_key)
    say(
        f"[red]the operator's passphrase is stolen[/red]: forged-trust-bundle.json says the revoked certificate is "
        f"fine, signed with the operator key {operator}"
    )
    say("a bank that pins only the operator key is fooled:")
    verify(
        out,
        [
            "data-asset-certificate.revoked.json",
            "--bundle",
            "forged-trust-bundle.json",
            "--operator",
            operator,
        ],
        expect=0,
    )
    say("the bank in validator mode is not — the revocation is proven from state the validators sealed:")
    verify(
        out,
        [
            "data-asset-certificate.revoked.json",
            "--bundle",
            "forged-trust-bundle.json",
            "--validators",
            "validators.json",
        ],
        expect=1,
    )

    # 2. a licence minted for an issuer whose key lives in its own signer
    say(
        f"{victim['name']} (issuer #{victim['issuerId']}) keeps its key in its own signer "
        f"(chain account {victim['chainAccount']}); the registry holds no key for it"
    )
    issuer = {
        "id": f"did:certledger:{chain_id}:issuer:{victim['issuerId']}",
        "name": victim["name"],
        "unifiedSocialCreditCode": victim["identifier"],
    }
    doc = build_document(
        business_licence_record(name="佛山市冒名贸易有限公司 (minted by the thief)"),
        "BusinessLicence",
        issuer,
        999_999,
        {"chainId": chain_id, "anchorRegistry": registry},
    )
    prepared = prepare_credential(doc)
    tree = StandardMerkleTree.of([(prepared.target_hash, prepared.subject_hash)])
    signature = sign_batch(
        "secp256k1", operator_key, tree.root, 1, 1, chain_id=chain_id, anchor_registry=registry
    )
    try:  # the chain takes anchors only from the issuer's registered account
        await ctx.chain.anchors.functions.anchor(tree.root, 1, 1).call({"from": ctx.operator_address})
    except Exception as exc:  # noqa: BLE001 - the revert, whatever web3 calls it
        say(f"anchoring it from the operator's account: refused by the AnchorRegistry ({type(exc).__name__})")
    else:
        raise RuntimeError("the AnchorRegistry accepted an anchor from the operator's account")
    minted = assemble_holder_copy(
        doc,
        prepared,
        merkle_root=tree.root,
        merkle_proof=tree.proof(0),
        batch_count=1,
        issuer_id=victim["issuerId"],
        key_version=1,
        signature=signature,
        chain_id=chain_id,
        anchor_registry=registry,
        tx_hash="0x" + "00" * 32,
        block_number=bundle["block"]["number"],
    )
    (out / "minted-business-licence.json").write_text(json.dumps(minted, ensure_ascii=False, indent=2))
    # ... so the thief's bundle claims the anchor, and the operator's key as the issuer's
    lie = copy.deepcopy(forged)
    for rec in lie["issuers"]:
        if rec["id"] == victim["issuerId"]:
            rec["keys"][0]["account"] = operator
    lie["anchors"].append(
        {
            "root": "0x" + tree.root.hex(),
            "issuerId": victim["issuerId"],
            "keyVersion": 1,
            "credentialType": 1,
            "count": 1,
            "blockNumber": bundle["block"]["number"],
            "timestamp": bundle["block"]["timestamp"],
            "status": "valid",
            "reason": 0,
            "statusTimestamp": 0,
        }
    )
    (out / "forged-trust-bundle-minted.json").write_text(
        json.dumps(sign_trust_bundle(lie, operator_key), ensure_ascii=False)
    )
    say("minted-business-licence.json, signed with the operator key; a bank pinning the operator is fooled:")
    verify(
        out,
        [
            "minted-business-licence.json",
            "--bundle",
            "forged-trust-bundle-minted.json",
            "--operator",
            operator,
        ],
        expect=0,
    )
    say("in validator mode it is refused — nothing sealed proves its batch anchored:")
    verify(
        out,
        [
            "minted-business-licence.json",
            "--bundle",
            "forged-trust-bundle-minted.json",
            "--validators",
            "validators.json",
        ],
        expect=1,
    )

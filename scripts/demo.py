"""`make demo` (scripts/demo.py) — the mission's story end to end on the embedded defaults (local anvil +
SQLite in .certledger/), narrated. Every artefact goes to a folder named at the end; re-running
works (organisations are reused, new API keys issued)."""

from __future__ import annotations

import asyncio
import copy
import csv
import hashlib
import io
import json
import random
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.panel import Panel

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # scripts.samples


console = Console()

ORGS = {
    "data_authority": dict(
        name="广东省政务服务和数据管理局 Guangdong Data Authority",
        identifier="11440000MB2C93176",
        jurisdiction="CN-GD",
        roles=["issuer"],
        suite="sm2-sm3",
        credentialTypes=["DataAssetCertificate"],
    ),
    "market_regulator": dict(
        name="广州市市场监督管理局 Guangzhou Market Regulation Administration",
        identifier="11440100MB2D12345",
        jurisdiction="CN-GD",
        roles=["issuer"],
        suite="secp256k1",
        credentialTypes=["BusinessLicence", "OperatingPermit"],
    ),
    "manufacturer": dict(
        name="佛山市顺德示例电器制造有限公司 Foshan Shunde Example Appliances Co.",
        identifier="91440606MA4UDE7M0",
        jurisdiction="CN-GD",
        roles=["exporter"],
    ),
    "bank": dict(
        name="示例银行广州分行 Example Bank Guangzhou Branch",
        identifier="91440101MA5BANK00",
        jurisdiction="CN-GD",
        roles=["verifier"],
    ),
    "customs": dict(
        name="广东省数据海关 Guangdong Data Customs",
        identifier="11440000DATACU7T0",
        jurisdiction="CN-GD",
        roles=["regulator"],
    ),
    "hk_importer": dict(
        name="Example Analytics (HK) Ltd", identifier="HK-BR-71234567", jurisdiction="HK", roles=["exporter"]
    ),
    # two exporters of personal information under the 2024 rules (FORMAT.md §11.1)
    "travel_agency": dict(
        name="广州市示例旅行社有限公司 Guangzhou Example Travel Agency",
        identifier="91440104MA5TRAX00",
        jurisdiction="CN-GD",
        roles=["exporter"],
    ),
    "platform": dict(
        name="深圳市示例电商平台有限公司 Shenzhen Example E-commerce Platform",
        identifier="91440300MA5PLAT00",
        jurisdiction="CN-GD",
        roles=["exporter"],
    ),
}


def _with_check(code: str) -> str:
    from verifier.uscc import check_character

    code = code[:17]
    return code + check_character(code)


def step(n: int, text: str) -> None:
    console.print(f"\n[bold cyan]{n}.[/bold cyan] [bold]{text}[/bold]")


def say(text: str) -> None:
    console.print(f"   {text}", highlight=False)


def make_dataset(path: Path, rng: random.Random) -> str:
    """A year of half-hourly electricity readings for one factory meter (synthetic)."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["timestamp", "meter", "kwh"])
    start = datetime(2025, 1, 1, tzinfo=UTC).timestamp()
    for i in range(17520):
        ts = datetime.fromtimestamp(start + 1800 * i, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        w.writerow([ts, "FS-SD-0042", f"{rng.uniform(80, 420):.2f}"])
    data = buf.getvalue().encode()
    path.write_bytes(data)
    return "0x" + hashlib.sha256(data).hexdigest()


async def run_demo(out: Path, settings) -> Path:
    from registry.services.context import ServiceContext

    rng = random.Random()
    out.mkdir(parents=True, exist_ok=True)
    step(1, "Start the local permissioned chain (anvil) and the registry (SQLite), deploy the contracts")
    ctx = await ServiceContext.create(settings)
    d = ctx.deployment
    say(
        f"chain {d.chain_id} at {ctx.rpc_url}; IssuerRegistry {d.issuer_registry}, "
        f"AnchorRegistry {d.anchor_registry}, DataFlowLedger {d.data_flow_ledger}"
    )
    try:
        await _story(ctx, settings, out, rng)
    finally:
        await ctx.close()
    return out


async def _story(ctx, settings, out: Path, rng: random.Random) -> None:
    import httpx

    from registry.api.app import create_app
    from scripts.samples import business_licence_record, data_asset_record  # (imports the verifier)

    app = create_app(settings, ctx=ctx)
    async with app.router.lifespan_context(app):
        admin = (
            app.state.first_admin_key or (settings.data_dir / "secrets" / "admin-api-key").read_text().strip()
        )
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://registry", timeout=120
        ) as c:
            api = Api(c)
            call = api.json

            step(2, "Onboard the data authority and the market regulator as issuers (registered on-chain)")
            existing = {o["identifier"]: o for o in (await call("GET", "/v1/organisations", admin))["items"]}
            keys, orgs = {}, {}
            for role, spec in ORGS.items():
                spec = dict(spec)
                if "CN" in spec["jurisdiction"]:
                    spec["identifier"] = _with_check(spec["identifier"])
                if spec["identifier"] in existing:
                    o = existing[spec["identifier"]]
                    keys[role] = (await call("POST", f"/v1/organisations/{o['id']}/api-keys", admin))[
                        "apiKey"
                    ]
                else:
                    body = await call("POST", "/v1/organisations", admin, json=spec)
                    o, keys[role] = body["organisation"], body["apiKey"]
                orgs[role] = o
                say(
                    f"{o['name']} — roles {', '.join(o['roles'])}"
                    + (f", issuer #{o['issuerId']} ({o['suite']})" if o.get("issuerId") else "")
                    + (f", chain account {o['chainAccount']}" if o.get("chainAccount") else "")
                )

            step(3, "The market regulator issues a batch of 1,000 business e-licences (营业执照)")
            records = [business_licence_record(_random_uscc(rng)) for _ in range(1000)]
            res = await call(
                "POST",
                "/v1/credentials/bulk?type=BusinessLicence",
                keys["market_regulator"],
                content="\n".join(json.dumps(r, ensure_ascii=False) for r in records).encode(),
                headers={"Content-Type": "application/x-ndjson"},
            )
            licence_ids = res["ids"]
            say(f"accepted {res['accepted']} e-licences")

            step(
                4,
                "The data authority certifies the Foshan manufacturer's electricity-usage data asset, "
                "bound to the manufacturer's own key",
            )
            holder_id = _wallet(out, "keygen", "--force").strip()
            say(f"the manufacturer's wallet: certledger-wallet keygen → {holder_id[:48]}…")
            digest = make_dataset(out / "electricity-usage-2025.csv", rng)
            say(f"dataset electricity-usage-2025.csv: 17,520 half-hourly readings, sha256 {digest[:18]}…")
            asset = data_asset_record(orgs["manufacturer"]["identifier"], orgs["bank"]["identifier"], digest)
            asset["credentialSubject"] = {
                "id": holder_id,
                **asset["credentialSubject"],
                "holderName": orgs["manufacturer"]["name"],
            }
            asset["credentialSubject"]["authorisedUses"].append(
                {
                    "relyingParty": {
                        "name": orgs["hk_importer"]["name"],
                        "unifiedSocialCreditCode": _random_uscc(rng),
                    },
                    "purpose": "export:HK:energy-efficiency-analytics",
                    "until": "2027-12-31T23:59:59Z",
                }
            )
            cert_id = (
                await call(
                    "POST",
                    "/v1/credentials",
                    keys["data_authority"],
                    json={"type": "DataAssetCertificate", "record": asset},
                )
            )["id"]
            pi_certs = {}
            for role in ("travel_agency", "platform"):  # customer records, exported to Hong Kong
                rec = data_asset_record(orgs[role]["identifier"], orgs["bank"]["identifier"], digest)
                rec["credentialSubject"]["holderName"] = orgs[role]["name"]
                rec["credentialSubject"]["authorisedUses"].append(
                    {
                        "relyingParty": {
                            "name": orgs["hk_importer"]["name"],
                            "unifiedSocialCreditCode": _random_uscc(rng),
                        },
                        "purpose": "export:HK:*",
                        "until": "2027-12-31T23:59:59Z",
                    }
                )
                pi_certs[role] = (
                    await call(
                        "POST",
                        "/v1/credentials",
                        keys["data_authority"],
                        json={"type": "DataAssetCertificate", "record": rec},
                    )
                )["id"]
            spare = (
                await call(
                    "POST",
                    "/v1/credentials",
                    keys["data_authority"],
                    json={
                        "type": "DataAssetCertificate",
                        "record": data_asset_record(
                            orgs["manufacturer"]["identifier"], orgs["bank"]["identifier"], digest
                        ),
                    },
                )
            )["id"]
            await app.state.background.pipeline.drain()
            batches = (await call("GET", "/v1/batches?limit=1000", admin))["items"]
            for b in batches[-3:]:
                say(
                    f"batch {b['id']}: {b['count']} {b['type']} anchored in block {b['blockNumber']} "
                    f"(root {b['root'][:18]}…, tx {b['txHash'][:18]}…)"
                )

            cert = (await call("GET", f"/v1/credentials/{cert_id}", keys["data_authority"]))["credential"]
            (out / "data-asset-certificate.json").write_text(json.dumps(cert, ensure_ascii=False, indent=2))
            licence = (await call("GET", f"/v1/credentials/{licence_ids[0]}", keys["market_regulator"]))[
                "credential"
            ]
            (out / "business-licence.json").write_text(json.dumps(licence, ensure_ascii=False, indent=2))
            ident = licence["credentialSubject"]["licenceIdentifier"]
            found = await call("GET", f"/v1/credentials?licenceIdentifier={ident}", keys["market_regulator"])
            say(
                f"business-licence.json carries its national identifier (证照标识) {ident}; "
                f"looked up by it: {found['items'][0]['id']}"
            )

            step(5, "The enterprise redacts what the bank need not see (the valuation and the other uses)")
            from verifier import redact

            redacted = redact(cert, ["/credentialSubject/valuation", "/credentialSubject/authorisedUses/1"])
            (out / "data-asset-certificate.redacted.json").write_text(
                json.dumps(redacted, ensure_ascii=False, indent=2)
            )
            say("removed /credentialSubject/valuation and the second authorised use; their digests stay")

            step(6, "Export the signed trust bundle — everything the bank needs to verify with no network")
            bundle = await call("GET", "/v1/trust-bundle", keys["bank"])
            (out / "trust-bundle.json").write_text(json.dumps(bundle, ensure_ascii=False))
            say(
                f"as of block {bundle['block']['number']}, signed by operator {bundle['signature']['signer']}"
            )

            step(7, "The bank verifies the redacted certificate offline, with the dataset it received")
            _verify(
                out,
                [
                    "data-asset-certificate.redacted.json",
                    "--bundle",
                    "trust-bundle.json",
                    "--operator",
                    bundle["signature"]["signer"],
                    "--data",
                    "electricity-usage-2025.csv",
                    "--relying-party",
                    orgs["bank"]["identifier"],
                    "--purpose",
                    "credit-assessment",
                ],
            )

            step(8, "A tampered copy and a revoked certificate are refused, with reasons")
            tampered = copy.deepcopy(redacted)
            tampered["credentialSubject"]["recordCount"] = 35040
            (out / "data-asset-certificate.tampered.json").write_text(
                json.dumps(tampered, ensure_ascii=False, indent=2)
            )
            say("tampered: recordCount changed from 17520 to 35040")
            _verify(out, ["data-asset-certificate.tampered.json", "--bundle", "trust-bundle.json"], expect=1)
            revoked = (await call("GET", f"/v1/credentials/{spare}", keys["data_authority"]))["credential"]
            (out / "data-asset-certificate.revoked.json").write_text(
                json.dumps(revoked, ensure_ascii=False, indent=2)
            )
            await call(
                "POST",
                f"/v1/credentials/{spare}/revoke",
                keys["data_authority"],
                json={"reason": "superseded"},
            )
            say("the data authority revokes a superseded certificate on-chain; the bank takes a fresh bundle")
            bundle = await call("GET", "/v1/trust-bundle", keys["bank"])
            (out / "trust-bundle.json").write_text(json.dumps(bundle, ensure_ascii=False))
            _verify(out, ["data-asset-certificate.revoked.json", "--bundle", "trust-bundle.json"], expect=1)

            step(
                9,
                "The loan: the bank asks for the certificate, the enterprise presents it bound to that request",
            )
            await _loan_story(out, orgs, bundle)
            await _pledge_story(ctx, api, keys, cert_id, out, cert, bundle)

            step(10, "An e-licence as a QR code that opens the verify page")
            r = await c.get(
                f"/v1/credentials/{licence_ids[0]}/qr.png",
                headers={"Authorization": f"Bearer {keys['market_regulator']}"},
            )
            (out / "business-licence-qr.png").write_bytes(r.content)
            say(f"business-licence-qr.png → {settings.public_url}/verify?credential={licence_ids[0]}")

            step(11, "A cross-border flow to Hong Kong: declared, approved by data customs, traced")
            await _flow_story(api, keys, orgs, cert_id, digest, out, pi_certs)

            step(
                12,
                "The operator's passphrase is stolen: what fools a bank pinning the operator key fails in "
                "validator mode",
            )
            from scripts.demo_attack import attack_story

            await attack_story(
                ctx, call, keys, admin, out, settings, say=say, verify=_verify, with_check=_with_check
            )


def _random_uscc(rng: random.Random) -> str:
    alphabet = "0123456789ABCDEFGHJKLMNPQRTUWXY"
    return _with_check("914401" + "".join(rng.choice(alphabet) for _ in range(11)))


class Api:
    """The registry's HTTP API, as the organisations use it."""

    def __init__(self, client):
        self.client = client

    async def json(self, method: str, url: str, key: str, *, headers: dict | None = None, **kw):
        r = await self.client.request(
            method, url, headers={"Authorization": f"Bearer {key}", **(headers or {})}, **kw
        )
        if r.status_code >= 400:
            raise RuntimeError(f"{method} {url}: {r.status_code} {r.text[:300]}")
        return r.json()

    async def text(self, url: str, key: str) -> str:
        r = await self.client.get(url, headers={"Authorization": f"Bearer {key}"})
        if r.status_code >= 400:
            raise RuntimeError(f"GET {url}: {r.status_code} {r.text[:300]}")
        return r.text


async def _flow_story(api: Api, keys, orgs, cert_id, digest, out: Path, pi_certs: dict) -> None:
    call = api.json
    try:
        import registry.flows.ledger  # noqa: F401
    except ImportError:
        say("[yellow]the data-flow ledger service is not installed in this build[/yellow]")
        return
    decl = {
        "credentialId": cert_id,
        "importer": {
            "name": orgs["hk_importer"]["name"],
            "identifier": orgs["hk_importer"]["identifier"],
            "jurisdiction": "HK",
        },
        "fromJurisdiction": "440600",
        "toJurisdiction": "HK",
        "dataCategories": ["electricity-usage"],
        "personalInformation": False,
        "personalInformationSubjects": 0,
        "legalBasis": "gba-standard-contract",
        "purpose": "energy-efficiency-analytics",
        "volume": (out / "electricity-usage-2025.csv").stat().st_size,
        "payloadDigest": digest,
    }
    flow = await call("POST", "/v1/flows", keys["manufacturer"], json=decl)
    fid = flow.get("flowId") or flow.get("id")
    say(
        f"flow #{fid} 440600 Foshan → HK declared on the data-flow ledger (tx {str(flow.get('txHash'))[:18]}…)"
    )
    await call(
        "POST",
        f"/v1/flows/{fid}/decision",
        keys["customs"],
        json={"decision": "approved", "reason": "GBA standard contract filed"},
    )
    say("data customs approves it on-chain")
    await _rules_story(api, keys, orgs, digest, out, pi_certs)
    trace = await call("GET", "/v1/flows/trace?format=json", keys["customs"])
    (out / "trace.json").write_text(json.dumps(trace, ensure_ascii=False, indent=2))
    for fmt in ("csv", "svg"):
        (out / f"trace.{fmt}").write_text(await api.text(f"/v1/flows/trace?format={fmt}", keys["customs"]))
    for v in trace.get("violations", []):
        say(f"[red]violation[/red] {v['kind']}: {v['message']}")
    totals = trace.get("totals") or trace.get("totalsByJurisdictionPair")
    say(
        f"trace: {len(trace.get('edges', trace.get('flows', [])))} flow(s), totals {totals}, "
        f"violations {len(trace.get('violations', []))}"
    )


def _wallet(folder: Path, *args: str) -> str:
    """`certledger-wallet` with the manufacturer's wallet in the artefact folder; its output."""
    exe = Path(sys.executable).parent / "certledger-wallet"
    proc = subprocess.run(
        [str(exe), *args, "--wallet", str(folder / "manufacturer-wallet")],
        cwd=folder,
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise RuntimeError(
            f"certledger-wallet {args[0]} exited {proc.returncode}: {proc.stderr.strip()[-500:]}"
        )
    return proc.stdout


async def _loan_story(out: Path, orgs, bundle) -> None:
    """The bank's request, the enterprise's presentation bound to it, the bank's offline check; a replay
    to a second bank and an expired presentation are refused."""
    bank = orgs["bank"]["identifier"]
    bank_wallet = Path(sys.executable).parent / "certledger-wallet"
    subprocess.run(
        [
            str(bank_wallet),
            "request",
            "--audience",
            bank,
            "--purpose",
            "credit-assessment",
            "--type",
            "DataAssetCertificate",
            "--ttl",
            "120",
            "--out",
            "loan-request.json",
        ],
        cwd=out,
        check=True,
        capture_output=True,
    )
    request = json.loads((out / "loan-request.json").read_text())
    say(
        f"[dim]bank$[/dim] certledger-wallet request → nonce {request['nonce'][:18]}…, purpose credit-assessment, "
        f"expires {request['expires']}"
    )
    _wallet(out, "add", "data-asset-certificate.json")
    _wallet(
        out,
        "present",
        "--request",
        "loan-request.json",
        "--credential",
        json.loads((out / "data-asset-certificate.json").read_text())["id"],
        "--drop",
        "/credentialSubject/valuation",
        "--drop",
        "/credentialSubject/authorisedUses/1",
        "--out",
        "loan-presentation.json",
    )
    say(
        "[dim]enterprise$[/dim] certledger-wallet present --request loan-request.json → loan-presentation.json "
        "(valuation and the other use redacted, signed with its holder key)"
    )
    _verify(
        out,
        [
            "loan-presentation.json",
            "--presentation",
            "loan-request.json",
            "--bundle",
            "trust-bundle.json",
            "--operator",
            bundle["signature"]["signer"],
            "--data",
            "electricity-usage-2025.csv",
        ],
    )
    say("a second bank is shown the same presentation: it answers another request (a replay)")
    subprocess.run(
        [
            str(bank_wallet),
            "request",
            "--audience",
            bank,
            "--purpose",
            "credit-assessment",
            "--out",
            "second-bank-request.json",
        ],
        cwd=out,
        check=True,
        capture_output=True,
    )
    _verify(
        out,
        [
            "loan-presentation.json",
            "--presentation",
            "second-bank-request.json",
            "--bundle",
            "trust-bundle.json",
        ],
        expect=1,
    )
    say("the first bank checks it again after its request expired")
    from verifier.issuance import parse_datetime

    later = (parse_datetime(request["expires"]) + timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    _verify(
        out,
        [
            "loan-presentation.json",
            "--presentation",
            "loan-request.json",
            "--bundle",
            "trust-bundle.json",
            "--at",
            later,
        ],
        expect=1,
    )


async def _pledge_story(ctx, api: Api, keys: dict, cert_id: str, out: Path, cert: dict, bundle: dict) -> None:
    """Issue 22: the bank checks the asset is not pledged (proven from PledgeRegistry storage under the
    operator-signed header), takes a pledge with both parties' EIP-712 consent through the registry;
    a second bank sees it and its own pledge is refused on-chain; on repayment the first bank
    releases it. The registry relays each transaction through its outbox (POST …/asset/register,
    …/pledges, …/pledges/1/release); the holder's and banks' wallets only sign."""
    from eth_account import Account

    from ledger_node import DEV_KEYS
    from ledger_node.chain import Chain
    from scripts.pledge_consents import pledge_signature, release_signature
    from verifier import TrustBundle
    from verifier._pledge_proof import asset_key, fetch_pledge_proof, pledge_check

    d = ctx.deployment
    if d.pledge_registry is None:
        say(
            "[yellow]this deployment predates the pledge registry (`certledger deploy --force` adds it): "
            "pledges skipped[/yellow]"
        )
        return
    chain = Chain(ctx.rpc_url)
    reg = chain.contract("PledgeRegistry", d.pledge_registry)
    holder, bank_a, bank_b = DEV_KEYS[7], DEV_KEYS[8], DEV_KEYS[9]
    names = {
        Account.from_key(bank_a).address.lower(): "示例银行",
        Account.from_key(bank_b).address.lower(): "第二银行",
    }
    key = asset_key(cert["issuer"]["id"], cert["credentialSubject"]["assetId"])
    base = f"/v1/credentials/{cert_id}"
    if reg.functions.assetOf(key).call()[5] == 0:
        got = await api.json(
            "POST",
            f"{base}/asset/register",
            keys["data_authority"],
            json={"holder": Account.from_key(holder).address},
        )
        say(
            f"the data authority registers the asset through the registry (registration no. "
            f"{got['asset']['registrationNo']}), holder the manufacturer's chain account"
        )
    trust = TrustBundle.load(bundle, operators=[bundle["signature"]["signer"]])
    operator = bytes.fromhex(ctx.operator_key[2:])

    def check(who: str) -> str:
        proof = fetch_pledge_proof(chain.w3, d.pledge_registry, key, operator)
        (out / "pledge-proof.json").write_text(json.dumps(proof))
        got = pledge_check(cert, proof, pledge_registry=d.pledge_registry, trust=trust, lender_names=names)
        say(f"[dim]{who}$[/dim] pledge: {got.status} — {got.reason}")
        return got.reason

    check("bank")

    def consents(lender: str, loan: str) -> dict:
        a = reg.functions.assetOf(key).call()
        deadline = int(datetime.now().timestamp()) + 3600
        common = dict(
            asset_key=key,
            rank=1,
            holder=a[0],
            lender=Account.from_key(lender).address,
            loan_ref=loan,
            nonce=a[6],
            deadline=deadline,
        )
        return {
            "lender": Account.from_key(lender).address,
            "loanRef": loan,
            "deadline": deadline,
            "holderSignature": pledge_signature(holder, d.chain_id, d.pledge_registry, **common),
            "lenderSignature": pledge_signature(lender, d.chain_id, d.pledge_registry, **common),
        }

    await api.json("POST", f"{base}/pledges", keys["bank"], json=consents(bank_a, "GZ-LOAN-2026-001"))
    say("the manufacturer and 示例银行 sign the pledge (EIP-712); the registry relays it on-chain")
    check("second bank")
    try:
        await api.json("POST", f"{base}/pledges", keys["bank"], json=consents(bank_b, "SZ-LOAN-2026-042"))
        raise RuntimeError("the second pledge was accepted")
    except RuntimeError as exc:
        if "AlreadyPledged" not in str(exc):
            raise
        say("第二银行's own pledge, signed by the manufacturer too, is refused on-chain: AlreadyPledged")
    nonce = reg.functions.assetOf(key).call()[6]
    sig = release_signature(bank_a, d.chain_id, d.pledge_registry, asset_key=key, rank=1, nonce=nonce)
    await api.json("POST", f"{base}/pledges/1/release", keys["bank"], json={"lenderSignature": sig})
    say("the loan is repaid: 示例银行 releases its pledge (its signed release, relayed by the registry)")
    check("bank")


async def _rules_story(api: Api, keys, orgs, digest, out: Path, pi_certs: dict) -> None:
    """The 2024 rules: an exempt exporter under 100,000 people, approved; a platform that splits
    1.2 million people into four standard-contract flows of 300,000, flagged as a split that needs a
    security assessment (CAC 2024 art. 7(2); the standard-contract measures art. 4)."""
    call = api.json
    base = {
        "importer": {
            "name": orgs["hk_importer"]["name"],
            "identifier": orgs["hk_importer"]["identifier"],
            "jurisdiction": "HK",
        },
        "toJurisdiction": "HK",
        "dataCategories": ["customer-records"],
        "personalInformation": True,
        "purpose": "customer-service",
        "volume": (out / "electricity-usage-2025.csv").stat().st_size,
        "payloadDigest": digest,
    }
    flow = await call(
        "POST",
        "/v1/flows",
        keys["travel_agency"],
        json={
            **base,
            "credentialId": pi_certs["travel_agency"],
            "fromJurisdiction": "440100",
            "personalInformationSubjects": 80_000,
            "legalBasis": "exemption",
            "exemptionGround": "annual-under-100000",
        },
    )
    rule = flow["declaration"]["rule"]
    say(
        f"flow #{flow['flowId']} 440100 Guangzhou → HK: 80,000 customers under an exemption — rule {rule['rule']} "
        f"({rule['source']['name'].split(' ')[0]} art. {rule['source']['article']}), this year "
        f"{rule['annualSubjects']:,} people"
    )
    await call(
        "POST",
        f"/v1/flows/{flow['flowId']}/decision",
        keys["customs"],
        json={"decision": "approved", "reason": "exempt: fewer than 100,000 people this year (art. 5(4))"},
    )
    say("data customs approves it")
    today = datetime.now().date().isoformat()
    for i in range(4):
        flow = await call(
            "POST",
            "/v1/flows",
            keys["platform"],
            json={
                **base,
                "credentialId": pi_certs["platform"],
                "fromJurisdiction": "440300",
                "personalInformationSubjects": 300_000,
                "legalBasis": "standard-contract",
                "filing": {"reference": f"SC-2026-{i + 1:04d}", "effectiveFrom": today, "filedAt": today},
            },
        )
        rule = flow["declaration"]["rule"]
        say(
            f"flow #{flow['flowId']} 440300 Shenzhen → HK: 300,000 customers under a standard contract — this year "
            f"{rule['annualSubjects']:,} people, rule {rule['rule']} needs {rule['requires']}"
            + ("" if rule["covered"] else " [red](not covered)[/red]")
        )


def _verify(folder: Path, args: list[str], expect: int = 0) -> None:
    exe = Path(sys.executable).parent / "certledger-verify"
    proc = subprocess.run([str(exe), *args], cwd=folder, capture_output=True, text=True)
    for line in proc.stdout.strip().splitlines():
        say(f"[dim]bank$[/dim] {line}")
    if proc.returncode != expect:
        raise RuntimeError(
            f"certledger-verify exited {proc.returncode}, expected {expect}: {proc.stderr[-500:]}"
        )


def demo_command(
    out: Annotated[Path | None, typer.Option(help="Artefact folder (default: demo-output/<time>).")] = None,
) -> None:
    """Run the whole story on the embedded defaults (local anvil + SQLite), narrated."""
    from registry.core.config import Settings

    settings = Settings()
    folder = out or Path("demo-output") / datetime.now().strftime("%Y%m%d-%H%M%S")
    try:
        asyncio.run(run_demo(folder, settings))
    except Exception as exc:  # noqa: BLE001 - one clear line, the state stays for inspection
        console.print(f"[red]demo failed:[/red] {exc}")
        raise typer.Exit(1) from None
    files = "\n".join(f"  {p.name}" for p in sorted(folder.iterdir()))
    console.print(
        Panel(
            f"Artefacts in [bold]{folder.resolve()}[/bold]:\n{files}\n\n"
            f"Verify any of them yourself:\n  .venv/bin/certledger-verify {folder}/business-licence.json "
            f"--bundle {folder}/trust-bundle.json\n\nThe local chain keeps running (state in {settings.data_dir}/): "
            f"`.venv/bin/certledger node down` stops it.",
            title="certledger demo done",
        )
    )


if __name__ == "__main__":
    typer.run(demo_command)

"""The ``world`` fixture: a small data-customs world on a real registry service (tests.support.flows)."""

from __future__ import annotations

import random

import pytest

from scripts.samples import make_uscc
from tests.support.flows import World, issue_certificate


@pytest.fixture()
async def world(service):
    rng = random.Random()
    _, authority = await service.create_org(
        name="广东省政务服务和数据管理局",
        identifier=make_uscc(rng, "114400"),
        roles=["issuer"],
        types=["DataAssetCertificate"],
    )
    uscc = make_uscc(rng, "914401")
    gz, gz_key = await service.create_org(
        name="广州市示例能源科技有限公司", identifier=uscc, roles=["exporter"]
    )
    hk, hk_key = await service.create_org(
        name="Example Trade Finance (HK) Ltd",
        identifier="HK-BR-12345678",
        roles=["exporter"],
        jurisdiction="HK",
    )
    sg, sg_key = await service.create_org(
        name="Example Analytics Pte Ltd",
        identifier="SG-UEN-201912345K",
        roles=["exporter"],
        jurisdiction="SG",
    )
    mo, mo_key = await service.create_org(
        name="Exemplo Dados Macau Lda", identifier="MO-SO-54321", roles=["exporter"], jurisdiction="MO"
    )
    _, regulator = await service.create_org(
        name="国家数据局 数据出境监管", identifier=make_uscc(rng, "110000"), roles=["regulator"]
    )
    cid = await issue_certificate(service, authority, uscc)
    return World(service, authority, gz, gz_key, hk, hk_key, sg, sg_key, mo, mo_key, regulator, cid)

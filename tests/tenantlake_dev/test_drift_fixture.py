"""The drifting export the drift benchmark reads: a valid AWS export, drifting in the promised
shares, and written without the simulator's (or tenantlake's) code."""

import ast
import base64
import gzip
import hashlib
import json
from pathlib import Path

import pytest
from boto3.dynamodb.types import TypeDeserializer

import tenantlake_dev.drift_fixture as fixture
from tenantlake.contracts import SHAPES, entity
from tenantlake_dev.drift_fixture import NO_DRIFT, Mix, write_export

deser = TypeDeserializer()
N = 4000


def items_of(root: Path, summary_key: str) -> list[dict]:
    summary = json.loads((root / summary_key).read_text())
    out = []
    for entry in map(json.loads, (root / summary["manifestFilesS3Key"]).read_text().splitlines()):
        lines = gzip.decompress((root / entry["dataFileS3Key"]).read_bytes()).splitlines()
        assert len(lines) == entry["itemCount"]
        out += [json.loads(x)["Item"] for x in lines]
    return out


@pytest.fixture(scope="module", params=["Debt", "Consumer"])
def drifting(request, tmp_path_factory):
    root = tmp_path_factory.mktemp(request.param)
    w = write_export(root, tenant_id="agency-x", entity=request.param, items=N, files=3, mix=Mix())
    return request.param, root, w


def test_it_is_an_export_as_aws_writes_it(drifting):
    _, root, w = drifting
    summary = json.loads((root / w.summary_key).read_text())
    assert summary["itemCount"] == N and summary["outputFormat"] == "DYNAMODB_JSON"
    assert (root / w.summary_key).parent.joinpath("_started").exists()
    entries = [json.loads(x) for x in (root / summary["manifestFilesS3Key"]).read_text().splitlines()]
    assert sum(e["itemCount"] for e in entries) == N and len(entries) == 3
    for e in entries:
        body = (root / e["dataFileS3Key"]).read_bytes()
        assert e["md5Checksum"] == base64.b64encode(hashlib.md5(body).digest()).decode()
    assert len(items_of(root, w.summary_key)) == N


def test_every_item_is_valid_dynamodb_json(drifting):
    _, root, w = drifting
    for item in items_of(root, w.summary_key):
        {k: deser.deserialize(v) for k, v in item.items()}  # raises on anything DynamoDB JSON cannot be


def test_it_drifts_in_the_promised_shares(drifting):
    name, root, w = drifting
    items = items_of(root, w.summary_key)
    contract = entity(name)
    declared = contract.by_name
    undeclared_nested = sum(
        any(f not in {s.name for s in SHAPES[declared[a].kind]} for f in v.get("M", {}))
        for item in items for a, v in item.items() if a in declared and declared[a].kind in SHAPES)
    new_top = sum(any(a not in declared for a in item) for item in items)
    enum = next(a for a in contract.attributes if a.values and a.name in ("accountType", "status"))
    unknown = sum(item[enum.name]["S"] not in enum.values for item in items)
    as_text = sum(any(declared[a].kind in ("rate", "int") and "S" in v for a, v in item.items() if a in declared)
                  for item in items)
    if name == "Debt":
        assert undeclared_nested / N >= 0.30  # bureau.history, inside the declared map
        assert new_top / N >= 0.20  # riskScore, hardshipSince
    else:
        assert new_top / N >= 0.30  # Consumer declares no map: its nested drift is a new map, address
    assert 0.035 < unknown / N < 0.065
    assert 0 < as_text / N < 0.02


def test_the_non_drifting_export_holds_only_what_the_contract_declares(tmp_path):
    for name in ("Debt", "Consumer"):
        w = write_export(tmp_path / name, tenant_id="agency-x", entity=name, items=500, files=1, mix=NO_DRIFT)
        declared = entity(name).by_name
        for item in items_of(tmp_path / name, w.summary_key):
            assert set(item) <= set(declared)
            for a, v in item.items():
                attr = declared[a]
                assert not attr.values or v["S"] in attr.values
                if attr.kind in SHAPES:
                    assert set(v["M"]) <= {f.name for f in SHAPES[attr.kind]}


def test_same_seed_same_bytes(tmp_path):
    a = write_export(tmp_path / "a", tenant_id="t", entity="Debt", items=300, files=2, mix=Mix(), seed=3)
    b = write_export(tmp_path / "b", tenant_id="t", entity="Debt", items=300, files=2, mix=Mix(), seed=3)
    assert [(tmp_path / "a" / k).read_bytes() for k in a.files] == [(tmp_path / "b" / k).read_bytes() for k in b.files]


def test_it_shares_no_code_with_the_simulator_or_tenantlake():
    tree = ast.parse(Path(fixture.__file__).read_text())
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)} | {
        a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert not {m for m in imported if m and m.split(".")[0] in ("tenantlake", "tenantlake_dev")}

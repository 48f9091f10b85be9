"""The simulator writes what AWS writes: checked by re-reading its files with plain tools."""

import base64
import gzip
import hashlib
import json
from decimal import Decimal
from pathlib import Path

import boto3
import pytest
from boto3.dynamodb.types import TypeDeserializer
from moto import mock_aws

from tenantlake_dev.simulate import FleetSpec, simulate_fleet
from tenantlake_dev.simulate.truth import tenant_aggregates

deser = TypeDeserializer()


def exports(out: Path):
    return [json.loads(line) for line in (out / "truth" / "exports.jsonl").read_text().splitlines()]


def summaries(landing: Path):
    return sorted(landing.glob("tenant=*/table=*/AWSDynamoDB/*/manifest-summary.json"))


def test_every_export_folder_is_complete_and_its_manifests_verify(fleet):
    out, _ = fleet
    landing = out / "landing"
    found = summaries(landing)
    assert len(found) == 3 * 8 * (1 + 4)  # 3 agencies x 8 tables x (full + 4 twelve-hour windows)
    for path in found:
        folder = path.parent
        summary = json.loads(path.read_text())
        assert (folder / "_started").read_bytes() == b""
        manifest = (folder / "manifest-files.json").read_bytes()
        assert (folder / "manifest-files.checksum").read_text() == hashlib.md5(manifest).hexdigest()
        assert (folder / "manifest-summary.checksum").read_text() == hashlib.md5(path.read_bytes()).hexdigest()
        assert summary["manifestFilesS3Key"] == str((folder / "manifest-files.json").relative_to(landing))
        assert summary["exportArn"].startswith(summary["tableArn"] + "/export/" + folder.name)
        total = 0
        for entry in map(json.loads, manifest.decode().splitlines()):
            body = (landing / entry["dataFileS3Key"]).read_bytes()
            assert entry["md5Checksum"] == base64.b64encode(hashlib.md5(body).digest()).decode()
            lines = gzip.decompress(body).splitlines()
            assert len(lines) == entry["itemCount"]
            total += entry["itemCount"]
        assert summary["itemCount"] == total
        if summary["exportType"] == "FULL_EXPORT":
            assert summary["version"] == "2020-06-30"
            assert "/data/" in entry["dataFileS3Key"] and entry["itemCount"] == 0  # the empty partition
        else:
            assert summary["version"] == "2023-08-01"
            assert summary["outputView"] == "NEW_AND_OLD_IMAGES"
            assert summary["exportFromTime"] < summary["exportToTime"]


def test_summaries_name_the_registry_account_and_table(fleet, registry):
    out, _ = fleet
    for path in summaries(out / "landing"):
        summary = json.loads(path.read_text())
        tenant_id = path.parts[-5].removeprefix("tenant=")
        entity = path.parts[-4].removeprefix("table=")
        assert summary["tableArn"] == registry.tenant(tenant_id).table_arn(entity)


def _lines(landing: Path, summary: dict):
    manifest = (landing / summary["manifestFilesS3Key"]).read_text().splitlines()
    for entry in map(json.loads, manifest):
        for line in gzip.decompress((landing / entry["dataFileS3Key"]).read_bytes()).splitlines():
            yield json.loads(line)


def _truth(out: Path, tenant: str, entity: str) -> dict:
    lines = gzip.decompress((out / "truth" / tenant / f"{entity}.jsonl.gz").read_bytes()).splitlines()
    return {item["id"]["S"]: item for item in map(json.loads, lines)}


def test_full_plus_incrementals_replay_to_the_ground_truth(fleet):
    """Applying each window's changes (latest-wins) to the full export gives the final tables."""
    out, _ = fleet
    landing = out / "landing"
    by_table: dict = {}
    for path in summaries(landing):
        s = json.loads(path.read_text())
        by_table.setdefault((path.parts[-5][7:], path.parts[-4][6:]), []).append(s)
    kinds = {"insert": 0, "update": 0, "delete": 0}
    for (tenant, entity), exps in by_table.items():
        exps.sort(key=lambda s: (s["exportType"] != "FULL_EXPORT", s.get("exportFromTime", "")))
        state = {rec["Item"]["id"]["S"]: rec["Item"] for rec in _lines(landing, exps[0])}
        for s in exps[1:]:
            for rec in _lines(landing, s):
                key = rec["Keys"]["id"]["S"]
                assert int(rec["Metadata"]["WriteTimestampMicros"]["N"]) < 2**63
                if "NewImage" in rec:
                    kinds["update" if "OldImage" in rec else "insert"] += 1
                    assert ("OldImage" in rec) == (key in state)
                    state[key] = rec["NewImage"]
                else:
                    kinds["delete"] += 1
                    assert state.pop(key) == rec["OldImage"]
        assert state == _truth(out, tenant, entity), (tenant, entity)
    assert all(kinds.values()), kinds  # inserts, updates and deletes all occur


def test_stream_records_replay_to_the_ground_truth(fleet):
    out, _ = fleet
    landing = out / "landing"
    for tenant in ("agency-001", "agency-002"):
        for entity in ("Debt", "Expense", "Payment"):
            full = next(s for s in map(json.loads, map(Path.read_text, summaries(landing)))
                        if s["exportType"] == "FULL_EXPORT" and s["s3Prefix"] == f"tenant={tenant}/table={entity}")
            pipes_state = {r["Item"]["id"]["S"]: r["Item"] for r in _lines(landing, full)}
            firehose_state = dict(pipes_state)
            records = []
            for f in sorted((landing / f"tenant={tenant}/table={entity}/streams/pipes").rglob("*.gz")):
                records += json.loads(gzip.decompress(f.read_bytes()))["Records"]
            records.sort(key=lambda r: int(r["dynamodb"]["SequenceNumber"]))
            for r in records:
                key = r["dynamodb"]["Keys"]["id"]["S"]
                if r["eventName"] == "REMOVE":
                    del pipes_state[key]
                else:
                    pipes_state[key] = r["dynamodb"]["NewImage"]
            fh = []
            for f in sorted((landing / f"tenant={tenant}/table={entity}/streams/firehose").rglob("*.gz")):
                text = gzip.decompress(f.read_bytes()).decode()
                decoder, pos = json.JSONDecoder(), 0
                while pos < len(text):  # records may be concatenated with no delimiter
                    rec, pos = decoder.raw_decode(text, pos)
                    fh.append(rec)
                    while pos < len(text) and text[pos] == "\n":
                        pos += 1
            assert len(fh) == len(records)
            for r in fh:  # files are in time order; records within a file too
                key = r["dynamodb"]["Keys"]["id"]["S"]
                if r["eventName"] == "REMOVE":
                    del firehose_state[key]
                else:
                    firehose_state[key] = r["dynamodb"]["NewImage"]
            truth = _truth(out, tenant, entity)
            assert pipes_state == truth and firehose_state == truth


def test_items_decode_with_boto3_and_money_is_exact(fleet):
    out, _ = fleet
    debts = _truth(out, "agency-001", "Debt")
    assert debts
    for item in debts.values():
        plain = {k: deser.deserialize(v) for k, v in item.items()}
        assert isinstance(plain["balance"], Decimal) and plain["balance"] == plain["balance"].quantize(Decimal("0.01"))
        assert plain["creditorName"]
        assert isinstance(plain["tags"], set)


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path, registry):
    spec = FleetSpec(consumers=40, days=1, warmup_days=20, seed=5)

    def digest(out):
        simulate_fleet(registry.tenants[:2], spec if out.name != "c" else FleetSpec(
            consumers=40, days=1, warmup_days=20, seed=6), out, workers=1)
        files = sorted(p for p in out.rglob("*") if p.is_file())
        return {str(p.relative_to(out)): hashlib.md5(p.read_bytes()).hexdigest() for p in files}

    a, b, c = digest(tmp_path / "a"), digest(tmp_path / "b"), digest(tmp_path / "c")
    assert a == b
    assert a != c


def test_parallel_and_serial_runs_write_the_same_files(tmp_path, registry):
    spec = FleetSpec(consumers=30, days=1, warmup_days=10, seed=3)
    simulate_fleet(registry.tenants[:2], spec, tmp_path / "p", workers=2)
    simulate_fleet(registry.tenants[:2], spec, tmp_path / "s", workers=1)
    for p in (tmp_path / "p").rglob("*.gz"):
        assert p.read_bytes() == (tmp_path / "s" / p.relative_to(tmp_path / "p")).read_bytes()


@mock_aws
def test_s3_target_holds_the_same_objects_as_the_local_one(tmp_path, registry):
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="tenantlake-landing")
    spec = FleetSpec(consumers=20, days=1, warmup_days=10, seed=9)
    simulate_fleet(registry.tenants[:1], spec, tmp_path / "s3", "s3://tenantlake-landing/", s3_client=s3)
    simulate_fleet(registry.tenants[:1], spec, tmp_path / "local")
    local = tmp_path / "local" / "landing"
    keys = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket="tenantlake-landing")
            for o in page["Contents"]]
    assert sorted(keys) == sorted(str(p.relative_to(local)) for p in local.rglob("*") if p.is_file())
    for key in keys[:50]:
        assert s3.get_object(Bucket="tenantlake-landing", Key=key)["Body"].read() == (local / key).read_bytes()


def test_window_outside_dynamodb_range_is_refused():
    with pytest.raises(ValueError, match="15 minutes to 24 hours"):
        FleetSpec(window_hours=0.1)


def _item(**attrs):
    from tenantlake_dev.simulate.history import typed
    return {k: typed(v) for k, v in attrs.items()}


def test_aggregates_on_a_hand_made_agency():
    """Figures worked out by hand for a two-consumer agency."""
    empty = {e: {} for e in ("Consumer", "Counselor", "Application", "Income", "Expense")}
    state = {**empty,
             "Debt": {
                 "d1": _item(id="d1", creditorName="JPMCB CARD", balance=Decimal("100.10")),
                 "d2": _item(id="d2", creditorName="Chase", balance=Decimal("50.05")),
                 "d3": _item(id="d3", creditorName="AMEX", balance=Decimal("7.00")),
                 "d4": _item(id="d4", creditorName="AMEX", balance=Decimal("999.99"), _deleted=True),
             },
             "Plan": {"p1": _item(id="p1", status="ACTIVE", enrolledDebtIds=frozenset({"d1", "d3"})),
                      "p2": _item(id="p2", status="CANCELLED", enrolledDebtIds=frozenset({"d2"}))},
             "Payment": {"x1": _item(id="x1", status="SETTLED", amount=Decimal("20.00"), paidAt="2026-10-31T23:59:59.000Z"),
                         "x2": _item(id="x2", status="SETTLED", amount=Decimal("5.50"), paidAt="2026-11-01T00:00:00.000Z"),
                         "x3": _item(id="x3", status="RETURNED", amount=Decimal("9.99"), paidAt=None)}}
    agg = tenant_aggregates(state)
    assert agg["debt_balance"] == "157.15"
    assert agg["enrolled_debt"] == "107.10"
    assert agg["creditor_exposure"] == {"American Express": "7.00", "Chase": "150.15"}
    assert agg["payments_settled_by_month"] == {"2026-10": "20.00", "2026-11": "5.50"}
    assert agg["soft_deleted"]["Debt"] == 1 and agg["live_items"]["Debt"] == 3
    assert agg["payments_by_status"] == {"RETURNED": 1, "SETTLED": 2}

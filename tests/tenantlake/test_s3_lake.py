"""The same ingest with S3 on both sides: exports landed in an S3 bucket, the Iceberg lake in
another, its tables in Glue, all reached through the central account's AwsAccess (the Airflow
connection's endpoint, region and credentials: boto3 for the stores and Glue, pyarrow for the
lake's files). The export double serves them over HTTP, since pyarrow's S3 client is not boto3."""

import json

import boto3
import pytest

from tenantlake import sync
from tenantlake.lake import open_lake
from tenantlake.settings import Settings
from tenantlake.storage import open_store
from tenantlake_dev.aws_double import DoubleServer, seed
from tenantlake_dev.simulate import FleetSpec, simulate_fleet


@pytest.fixture(scope="module")
def s3_world(tmp_path_factory, registry):
    out = tmp_path_factory.mktemp("s3-lake")
    tenant = registry.tenant("agency-001")
    with DoubleServer() as server:
        seeded = seed(registry, endpoint_url=server.endpoint_url, tenants=[tenant])
        central = seeded.central_access()
        simulate_fleet([tenant], FleetSpec(consumers=60, days=2, warmup_days=20, seed=4), out,
                       "s3://tenantlake-landing/", s3_client=central.client("s3"))
        settings = Settings("aws", str(out), "s3://tenantlake-landing/", "s3://tenantlake-lake/tenantlake",
                            "aws_default", catalog="glue")
        yield server, central, settings, tenant, out


def test_exports_flow_from_s3_landing_to_an_iceberg_lake_in_s3_and_glue_exactly_once(s3_world):
    server, central, settings, tenant, out = s3_world
    landing = open_store(settings.landing, access=central)
    state = open_store(settings.lake, access=central)
    lake = open_lake(settings, central)
    work = [sync.plan_local(landing, lake, state, tenant, "Debt")]
    (outcome,) = sync.sync_shard(landing, lake, state, "Debt", work, "run-1", lambda tid: bytes(32))
    truth = [json.loads(x) for x in (out / "truth/exports.jsonl").read_text().splitlines()]
    expected = [e for e in truth if e["entity"] == "Debt" and e["kind"] in ("FULL_EXPORT", "INCREMENTAL_EXPORT")]
    summary = outcome.summary()
    assert summary["error"] is None
    assert (summary["batches"], summary["items"]) == (len(expected), sum(e["item_count"] for e in expected))
    # exactly once: nothing left to do for the same table
    again = sync.plan_local(landing, lake, state, tenant, "Debt")
    assert again.exports == []
    # where it went, seen by clients of our own at the same endpoint
    s3 = boto3.client("s3", endpoint_url=server.endpoint_url, region_name="us-east-1")
    keys = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket="tenantlake-lake")
            for o in page.get("Contents", [])]
    assert any(k.startswith("tenantlake/") and k.endswith(".parquet") for k in keys)
    assert all(k.startswith("tenantlake/") for k in keys)
    glue = boto3.client("glue", endpoint_url=server.endpoint_url, region_name="us-east-1",
                        aws_access_key_id=central.frozen_credentials().access_key,
                        aws_secret_access_key=central.frozen_credentials().secret_key)
    databases = {d["Name"] for d in glue.get_databases()["DatabaseList"]}
    assert "tenantlake_raw" in databases
    assert "debt" in {t["Name"].lower() for t in glue.get_tables(DatabaseName="tenantlake_raw")["TableList"]}

"""The same ingest with S3 on both sides (landing and lake), on moto: one interface, two stores."""

import json

import boto3
import pytest
from moto import mock_aws

from tenantlake import sync
from tenantlake.lake import commits, read_committed
from tenantlake.storage import S3Store
from tenantlake_dev.simulate import FleetSpec, simulate_fleet


@pytest.fixture
def s3_world(tmp_path, registry):
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        for bucket in ("tenantlake-landing", "tenantlake-lake"):
            s3.create_bucket(Bucket=bucket)
        simulate_fleet(registry.tenants[:1], FleetSpec(consumers=60, days=2, warmup_days=20, seed=4),
                       tmp_path, "s3://tenantlake-landing/", s3_client=s3)
        yield s3, S3Store("tenantlake-landing", client=s3), S3Store("tenantlake-lake", client=s3, prefix="tenantlake"), tmp_path


def test_exports_flow_from_s3_landing_to_s3_lake_exactly_once(s3_world, registry):
    s3, landing, lake, out = s3_world
    tenant = registry.tenant("agency-001")
    first = sync.sync_landed(landing, lake, tenant, "Debt", "run-1")
    expected = sum(e["item_count"] for e in map(json.loads, (out / "truth/exports.jsonl").read_text().splitlines())
                   if e["entity"] == "Debt")
    assert first.summary()["rows"] == expected == read_committed(lake, "Debt", "agency-001").num_rows
    keys = lake.list("")
    assert all(k.startswith(("raw/", "_state/", "_quality/", "quarantine/")) for k in keys)  # staging cleaned
    assert s3.list_objects_v2(Bucket="tenantlake-lake", Prefix="tenantlake/raw/")["KeyCount"] > 0  # under the prefix
    again = sync.sync_landed(landing, lake, tenant, "Debt", "run-2", resnapshot=True)  # republish everything
    assert again.summary()["rows"] == expected
    assert lake.list("raw/") == [k for k in keys if k.startswith("raw/")]  # replaced, not duplicated
    assert len(commits(lake, "Debt", "agency-001")) == 3  # a full export and two daily windows

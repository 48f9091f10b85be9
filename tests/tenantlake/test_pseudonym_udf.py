"""f_pseudonym on Redshift is a Lambda UDF; on the embedded default a DuckDB function. Both take
the tenant's key from Secrets Manager in aws mode, and must give the same pseudonym, which is
checked here against an HMAC computed by hand (hashlib, not our code). moto stands in for AWS."""

import hashlib
import hmac
import json
import os
import subprocess
import sys

import boto3
import pytest
from moto import mock_aws

from tenantlake import aws, cli, udf
from tenantlake.loading import pseudonym_keys
from tenantlake.settings import Settings

KEYS = {"agency-001": bytes(range(32)), "agency-002": bytes(range(100, 132))}


def by_hand(tenant_id: str, consumer_id: str) -> str:
    return hmac.new(KEYS[tenant_id], f"{tenant_id}|{consumer_id}".encode(), hashlib.sha256).hexdigest()[:32]


def redshift_event(rows):
    """The payload Redshift sends a Lambda UDF (AWS docs: Using the JSON interface)."""
    return {"request_id": "23FF1F97", "cluster": "arn:aws:redshift:us-east-1:200000000000:cluster:c",
            "user": "tenantlake_loader", "database": "analytics", "external_function": "public.f_pseudonym",
            "query_id": 5678234, "num_records": len(rows), "arguments": rows}


@pytest.fixture
def secrets():
    aws.forget()
    udf._session.cache_clear()
    with mock_aws():
        sm = boto3.client("secretsmanager", region_name="us-east-1")
        for tenant_id, key in KEYS.items():
            sm.create_secret(Name=f"tenantlake/{tenant_id}/pseudonym-key", SecretString=key.hex())
        yield sm
    aws.forget()
    udf._session.cache_clear()


def test_the_lambda_answers_a_redshift_batch_in_order(secrets):
    rows = [["agency-001", "c-1"], ["agency-002", "c-1"], ["agency-001", None], None, ["agency-001", "c-2"]]
    out = json.loads(udf.handler(redshift_event(rows)))
    assert out == {"success": True, "num_records": 5,
                   "results": [by_hand("agency-001", "c-1"), by_hand("agency-002", "c-1"), None, None,
                               by_hand("agency-001", "c-2")]}


@pytest.mark.parametrize(("rows", "message"), [
    ([["agency-009", "c-1"]], "cannot read secret secretsmanager:tenantlake/agency-009/pseudonym-key: "
                              "ResourceNotFoundException"),
    ([["../other-secret", "c-1"]], "f_pseudonym: '../other-secret' is not a tenant id"),
])
def test_the_lambda_fails_the_query_with_a_reason(secrets, rows, message):
    out = json.loads(udf.handler(redshift_event(rows)))
    assert out == {"success": False, "error_msg": message}


def test_a_key_that_is_not_hex_is_named_but_never_shown(secrets):
    secrets.create_secret(Name="tenantlake/agency-003/pseudonym-key", SecretString="correct horse battery staple")
    out = json.loads(udf.handler(redshift_event([["agency-003", "c-1"]])))
    assert not out["success"] and "tenantlake/agency-003/pseudonym-key" in out["error_msg"]
    assert "horse" not in out["error_msg"]


def test_duckdb_in_aws_mode_gives_the_lambdas_pseudonyms(secrets, registry, monkeypatch, tmp_path):
    from tenantlake.warehouse import DuckDBWarehouse

    monkeypatch.setattr(aws, "central_session", lambda conn_id: boto3.Session(region_name="us-east-1"))
    settings = Settings("aws", str(tmp_path), "s3://landing/", "s3://lake/tenantlake", "aws_default")
    wh = DuckDBWarehouse(str(tmp_path / "wh.duckdb"), pseudonym_keys(settings, registry))
    got = wh.query("SELECT f_pseudonym('agency-002', 'c-7') AS p")[0]["p"]
    wh.close()
    lam = json.loads(udf.handler(redshift_event([["agency-002", "c-7"]])))["results"][0]
    assert got == lam == by_hand("agency-002", "c-7")
    assert not list(tmp_path.rglob("*.key"))  # no local key file was made


def test_the_packaged_zip_is_all_the_lambda_needs(tmp_path):
    """The zip alone (plus boto3, which the Lambda runtime has) answers a batch: run in a fresh
    interpreter that cannot see src/, with moto inside it standing in for Secrets Manager."""
    out = tmp_path / "f.zip"
    assert cli.main(["package-udf", "--out", str(out)]) == 0
    script = f"""
import sys, json, boto3
sys.path = [p for p in sys.path if "/src" not in p and "__editable__" not in p]
sys.meta_path = [f for f in sys.meta_path if "editable" not in type(f).__module__.lower()]
sys.path.insert(0, {str(out)!r})
from moto import mock_aws
with mock_aws():
    boto3.client("secretsmanager", region_name="us-east-1").create_secret(
        Name="tenantlake/agency-001/pseudonym-key", SecretString={KEYS['agency-001'].hex()!r})
    import tenantlake.udf as u
    assert u.__file__.startswith({str(out)!r}), u.__file__
    print(u.handler({{"arguments": [["agency-001", "c-1"]], "num_records": 1}}))
"""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout)["results"] == [by_hand("agency-001", "c-1")]

"""Every AWS client from the Airflow connection: region, endpoint_url (and per-service endpoints),
credentials and the role chain (connection -> connection role -> tenant role with ExternalId),
for boto3 clients, the S3 store and pyiceberg alike; and the IAM policies under iam/.

All of it runs against the export double served over HTTP (a ThreadedMotoServer in this
process). AWS_ENDPOINT_URL points at a closed port, so a client that ignored the connection's
endpoint fails to connect instead of reaching anything else."""

import json
import pickle
import urllib.request

import boto3
import pyarrow as pa
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from tenantlake import aws
from tenantlake.connections import central_access, iam_policy
from tenantlake.storage import open_store
from tenantlake_dev.aws_double import STATE, DoubleServer, seed, tenant_client

CLOSED = "http://127.0.0.1:9"  # the discard port: nothing listens there


@pytest.fixture(scope="module")
def server():
    with DoubleServer() as s:
        yield s


@pytest.fixture
def world(server, registry, monkeypatch):
    """A fresh double: the central account and two tenants in different regions, seeded."""
    urllib.request.urlopen(urllib.request.Request(f"{server.endpoint_url}/moto-api/reset", method="POST"))
    STATE.reset()
    aws.forget()
    monkeypatch.setenv("AWS_ENDPOINT_URL", CLOSED)
    tenants = [registry.tenant("agency-001"), registry.tenant("agency-002")]  # us-east-1, us-east-2
    seeded = seed(registry, {"agency-002": {"Debt": [{"id": {"S": "d-1"}}]}}, endpoint_url=server.endpoint_url,
                  tenants=tenants)
    yield seeded
    aws.forget()


def connection(monkeypatch, conn_id: str, conn: dict) -> None:
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(conn))


def caller(access) -> dict:
    return access.client("sts").get_caller_identity()


def test_endpoint_and_credentials_of_the_connection_reach_the_central_account(world, monkeypatch):
    connection(monkeypatch, "central", world.airflow_connection())
    central = central_access("central")
    assert central.endpoint_url == world.endpoint_url
    who = caller(central)
    # the IAM user the connection names, not the environment's "testing" keys (moto's 123456789012)
    assert (who["Account"], who["Arn"]) == ("200000000000", "arn:aws:iam::200000000000:user/tenantlake-airflow")
    central.client("s3").put_object(Bucket="tenantlake-lake", Key="probe", Body=b"x")
    independent = boto3.client("s3", endpoint_url=world.endpoint_url, region_name="us-east-1")
    assert independent.get_object(Bucket="tenantlake-lake", Key="probe")["Body"].read() == b"x"


def test_without_the_endpoint_nothing_reaches_the_double(world, monkeypatch):
    """The guard the other tests rely on: a client that misses the endpoint fails."""
    conn = world.airflow_connection()
    del conn["extra"]["endpoint_url"]
    connection(monkeypatch, "central", conn)
    with pytest.raises(EndpointConnectionError):
        caller(central_access("central"))


def test_region_of_the_connection_is_every_clients_default(world, monkeypatch):
    conn = world.airflow_connection()
    conn["extra"]["region_name"] = "eu-west-1"
    connection(monkeypatch, "central", conn)
    central = central_access("central")
    assert central.region == "eu-west-1"
    assert {central.client(s).meta.region_name for s in ("s3", "ssm", "secretsmanager", "sts", "glue")} == {"eu-west-1"}
    assert central.client("dynamodb", "us-east-2").meta.region_name == "us-east-2"  # asked for, explicitly


def test_per_service_endpoint_overrides_the_global_one(world, monkeypatch):
    conn = world.airflow_connection()
    conn["extra"]["endpoint_url"] = CLOSED
    conn["extra"]["service_config"] = {"s3": {"endpoint_url": world.endpoint_url}}
    connection(monkeypatch, "central", conn)
    central = central_access("central")
    assert central.client("s3").list_objects_v2(Bucket="tenantlake-lake")["KeyCount"] == 0
    with pytest.raises(EndpointConnectionError):
        caller(central)  # STS follows the global endpoint_url


def test_the_connections_role_is_assumed_before_the_tenants(world, monkeypatch, registry):
    connection(monkeypatch, "central", world.airflow_connection(role=True))
    central = central_access("central")
    assert caller(central)["Arn"].startswith("arn:aws:sts::200000000000:assumed-role/tenantlake-central/")
    tenant = aws.tenant_access(registry.tenant("agency-002"), central)
    assert caller(tenant)["Arn"].startswith("arn:aws:sts::212222222222:assumed-role/tenantlake-export/")


def test_a_connection_role_that_does_not_trust_the_caller_is_refused(world, monkeypatch):
    """The chain is real: keys outside the central account may not assume the central role."""
    conn = world.airflow_connection(role=True)
    conn["login"], conn["password"] = "AKIAOUTSIDER00000000", "x" * 40  # moto: the default account
    connection(monkeypatch, "central", conn)
    with pytest.raises(ClientError, match="AccessDenied"):
        caller(central_access("central"))


def test_tenant_access_keeps_the_endpoint_and_takes_the_tenants_region(world, monkeypatch, registry):
    connection(monkeypatch, "central", world.airflow_connection())
    tenant = registry.tenant("agency-002")
    access = aws.tenant_access(tenant, central_access("central"))
    ddb = access.client("dynamodb")
    assert (ddb.meta.endpoint_url, ddb.meta.region_name) == (world.endpoint_url, "us-east-2")
    assert ddb.scan(TableName=tenant.tables["Debt"])["Items"] == [{"id": {"S": "d-1"}}]


def test_external_ids_are_read_in_the_central_region(world, monkeypatch, registry):
    """agency-002 lives in us-east-2; its ExternalId is the central account's, in us-east-1 only."""
    connection(monkeypatch, "central", world.airflow_connection())
    central = central_access("central")
    tenant = registry.tenant("agency-002")
    ssm_east2 = central.client("ssm", "us-east-2")
    with pytest.raises(ClientError, match="ParameterNotFound"):
        ssm_east2.get_parameter(Name=tenant.external_id_ref.removeprefix("ssm:"))
    assert caller(aws.tenant_access(tenant, central))["Account"] == tenant.aws_account_id


def test_s3_store_uses_the_access_and_survives_a_worker_process(world, monkeypatch):
    connection(monkeypatch, "central", world.airflow_connection())
    store = open_store("s3://tenantlake-landing/tenant=agency-001/", access=central_access("central"))
    store.put("a/b.json", b"{}")
    independent = boto3.client("s3", endpoint_url=world.endpoint_url, region_name="us-east-1")
    assert independent.get_object(Bucket="tenantlake-landing", Key="tenant=agency-001/a/b.json")["Body"].read() == b"{}"
    copy = pickle.loads(pickle.dumps(store))  # what a ProcessPoolExecutor worker receives
    assert copy.get("a/b.json") == b"{}"
    assert copy.client.meta.endpoint_url == world.endpoint_url
    assert caller(copy.access)["Account"] == "200000000000"


def test_pyiceberg_reaches_the_same_s3_and_glue(world, monkeypatch):
    from pyiceberg.catalog import load_catalog
    from pyiceberg.catalog.glue import GlueCatalog

    connection(monkeypatch, "central", world.airflow_connection())
    central = central_access("central")
    props = central.fileio_properties()
    assert props["s3.endpoint"] == world.endpoint_url and props["s3.region"] == "us-east-1"
    catalog = GlueCatalog("lake", client=central.client("glue"), **props)
    catalog.create_namespace("tenantlake_raw")
    table = catalog.create_table("tenantlake_raw.debt", schema=pa.schema([("id", pa.string())]),
                                 location="s3://tenantlake-lake/raw/debt")
    table.append(pa.table({"id": ["d-1", "d-2"]}))
    again = load_catalog("other", **central.glue_properties())  # properties only, no client handed over
    assert sorted(again.load_table("tenantlake_raw.debt").scan().to_arrow()["id"].to_pylist()) == ["d-1", "d-2"]
    independent = boto3.client("s3", endpoint_url=world.endpoint_url, region_name="us-east-1")
    keys = [o["Key"] for o in independent.list_objects_v2(Bucket="tenantlake-lake")["Contents"]]
    assert any(k.startswith("raw/debt/data/") and k.endswith(".parquet") for k in keys)


# ---- IAM policies ------------------------------------------------------------------------------

def test_policies_render_for_the_registry_and_moto_accepts_them(registry, server):
    iam = boto3.client("iam", endpoint_url=server.endpoint_url, region_name="us-east-1")
    values = {"CentralRegion": "us-east-1", "LakeBucket": "tenantlake-lake", "GlueDatabase": "tenantlake",
              "AirflowPrincipalArn": "arn:aws:iam::200000000000:role/airflow", "ExternalId": "e"}
    for name in ("central-role-policy", "central-lake-policy", "central-role-trust", "landing-bucket-policy",
                 "tenant-export-role-trust"):
        doc = iam_policy(name, registry, **values)
        assert "${" not in json.dumps(doc), name
        if "trust" not in name and "bucket" not in name:
            iam.create_policy(PolicyName=f"check-{name}", PolicyDocument=json.dumps(doc))
    one = iam_policy("tenant-export-role-policy", registry, tenant=registry.tenant("agency-002"))
    assert "${" not in json.dumps(one)
    iam.create_policy(PolicyName="check-tenant", PolicyDocument=json.dumps(one))


def test_landing_bucket_policy_gives_each_tenant_its_own_prefix_only(registry):
    doc = iam_policy("landing-bucket-policy", registry)
    writes = [s for s in doc["Statement"] if s["Effect"] == "Allow"]
    assert {(s["Principal"]["AWS"], s["Resource"]) for s in writes} == {
        (t.role_arn, f"arn:aws:s3:::{registry.landing_bucket}/tenant={t.tenant_id}/*") for t in registry.enabled}
    sids = [s["Sid"] for s in doc["Statement"]]
    assert len(sids) == len(set(sids))  # AWS refuses a policy with repeated Sids


def test_tenant_trust_policy_requires_the_external_id(registry):
    doc = iam_policy("tenant-export-role-trust", registry, ExternalId='a"b')
    (statement,) = doc["Statement"]
    assert statement["Principal"] == {"AWS": "arn:aws:iam::200000000000:root"}
    assert statement["Condition"] == {"StringEquals": {"sts:ExternalId": 'a"b'}}  # escaped, not broken


def test_a_placeholder_without_a_value_is_named(registry):
    with pytest.raises(ValueError, match=r"central-lake-policy.json: no value for \$\{LakeBucket\}"):
        iam_policy("central-lake-policy", registry, CentralRegion="us-east-1")


def test_tenant_client_is_inside_the_tenants_account(world, registry):
    """The seeding helper's own identity (used by tests to change a tenant's tables)."""
    tenant = registry.tenant("agency-002")
    assert tenant_client(tenant, "sts", world.endpoint_url).get_caller_identity()["Account"] == "212222222222"


def test_every_task_reaches_aws_through_the_connection_even_after_a_runtime_without_it(monkeypatch, tmp_path):
    """warehouse_load's steps and the ops refresh ran in their own process with a Runtime made
    without the connection, so the lake went to boto3's and pyarrow's defaults (the real AWS
    endpoints). Each entry point now takes connections.runtime(), and a Runtime cached without
    access is never handed to a caller that brings it."""
    from tenantlake import connections, loading, runtime
    from tenantlake.ops import tables

    monkeypatch.setenv("TENANTLAKE_MODE", "aws")
    monkeypatch.setenv("TENANTLAKE_HOME", str(tmp_path))
    sentinel = object()
    monkeypatch.setattr(connections, "central_access", lambda conn_id=None, region_name=None: sentinel)
    runtime.forget()
    try:
        assert runtime.Runtime.from_env().central is None  # a demo or a benchmark made one first
        assert connections.runtime().central is sentinel
        handed = []
        monkeypatch.setattr(connections, "runtime", lambda: handed.append("asked") or SystemExit)
        for entry in (lambda: loading._session().__enter__(), lambda: tables.refresh_ops()):
            with pytest.raises(BaseException):  # noqa: B017,PT011 - the sentinel is not a runtime: stop there
                entry()
        assert handed == ["asked", "asked"]
    finally:
        runtime.forget()

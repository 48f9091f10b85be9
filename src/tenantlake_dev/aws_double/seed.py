"""A fleet's accounts in the double, from the registry: what an onboarding would have set up.

Central account (the registry's landing_account_id): an IAM user for the Airflow connection, a
central role it may assume, the ExternalIds (SSM SecureString, or Secrets Manager, as each
tenant's external_id_ref says) and pseudonym keys (64 hex characters) under the registry's
references in `central_region`, the landing bucket with its bucket policy, the lake bucket.
Each tenant account: its export role, trusting the central account with its ExternalId
required, and its tables with point-in-time recovery on, filled with the items given.
Policies come from iam/*.json (tenantlake.connections.iam_policy), so seeding also checks that
moto's IAM accepts them.

Setup calls act in an account through moto's `x-moto-account-id` header, not through the roles
under test; the pipeline itself goes through the Airflow connection and the tenant roles.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field

from tenantlake.aws import AwsAccess, new_session
from tenantlake.connections import iam_policy

CENTRAL_USER = "tenantlake-airflow"
CENTRAL_ROLE = "tenantlake-central"


def account_client(service: str, account: str, region: str, endpoint_url: str | None = None):
    """A client acting inside `account` of the double (setup and test changes, not the pipeline)."""
    client = new_session("testing", "testing", region=region).client(service, endpoint_url=endpoint_url)

    def in_account(request, **_):
        request.headers["x-moto-account-id"] = account

    client.meta.events.register("request-created", in_account)
    return client


def tenant_client(tenant, service: str = "dynamodb", endpoint_url: str | None = None):
    """A client in the tenant's own account and region: how a test changes a tenant's tables."""
    return account_client(service, tenant.aws_account_id, tenant.region, endpoint_url)


@dataclass
class Seeded:
    endpoint_url: str | None
    central_account: str
    central_region: str
    access_key_id: str
    secret_access_key: str
    central_role_arn: str
    landing_bucket: str
    lake_bucket: str
    external_ids: dict[str, str] = field(default_factory=dict)
    pseudonym_keys: dict[str, str] = field(default_factory=dict)  # tenant id -> 64 hex characters

    def central_access(self) -> AwsAccess:
        """The central account as the Airflow connection below reaches it."""
        session = new_session(self.access_key_id, self.secret_access_key, region=self.central_region)
        return AwsAccess(session, self.central_region, self.endpoint_url)

    def airflow_connection(self, role: bool = False) -> dict:
        """The Airflow AWS connection (for AIRFLOW_CONN_<ID> as JSON). With `role`, the
        connection assumes the central role too (its STS endpoint set for that first hop)."""
        extra: dict = {"region_name": self.central_region}
        if self.endpoint_url:
            extra["endpoint_url"] = self.endpoint_url
        if role:
            extra["role_arn"] = self.central_role_arn
            if self.endpoint_url:
                extra["service_config"] = {"sts": {"endpoint_url": self.endpoint_url}}
        return {"conn_type": "aws", "login": self.access_key_id, "password": self.secret_access_key, "extra": extra}

    def as_json(self) -> dict:
        return {**asdict(self), "airflow_connection": self.airflow_connection()}


def seed(registry, items: Mapping[str, Mapping[str, list[dict]]] | None = None, *, endpoint_url: str | None = None,
         central_region: str = "us-east-1", lake_bucket: str = "tenantlake-lake", tenants=None,
         external_ids: Mapping[str, str] | None = None, pseudonym_keys: Mapping[str, str] | None = None,
         central_key: tuple[str, str] | None = None) -> Seeded:
    """Set up the central account and each tenant's (default: every tenant of the registry).
    `items` maps tenant id -> entity -> DynamoDB JSON items; they are written now, at the
    double's clock. ExternalIds and pseudonym keys are random unless given. `central_key`
    (access key id, secret) fixes the central user's credentials, so a connection can be written
    down before the double starts (docker-compose); it needs the double in this process."""
    central = registry.landing_account_id
    tenants = list(tenants if tenants is not None else registry.tenants)
    external_ids = {t.tenant_id: (external_ids or {}).get(t.tenant_id) or secrets.token_hex(16) for t in tenants}
    keys = {t.tenant_id: (pseudonym_keys or {}).get(t.tenant_id) or secrets.token_hex(32) for t in tenants}

    def client(service, account=central, region=central_region):
        return account_client(service, account, region, endpoint_url)

    iam = client("iam")
    iam.create_user(UserName=CENTRAL_USER)
    key = iam.create_access_key(UserName=CENTRAL_USER)["AccessKey"]
    if central_key:
        key = _fix_access_key(central, key["AccessKeyId"], *central_key)
    role_arn = iam.create_role(RoleName=CENTRAL_ROLE, AssumeRolePolicyDocument=json.dumps(
        iam_policy("central-role-trust", AirflowPrincipalArn=f"arn:aws:iam::{central}:root")))["Role"]["Arn"]
    for name in ("central-role-policy", "central-lake-policy"):
        policy = iam_policy(name, registry, CentralRegion=central_region, LakeBucket=lake_bucket,
                            GlueDatabase="tenantlake")
        iam.put_role_policy(RoleName=CENTRAL_ROLE, PolicyName=name, PolicyDocument=json.dumps(policy))

    ssm, secretsmanager = client("ssm"), client("secretsmanager")
    for t in tenants:
        for ref, value in ((t.external_id_ref, external_ids[t.tenant_id]), (t.pseudonym_key_ref, keys[t.tenant_id])):
            kind, _, name = ref.partition(":")
            if kind == "ssm":
                ssm.put_parameter(Name=name, Value=value, Type="SecureString", Overwrite=True)
            else:
                secretsmanager.create_secret(Name=name, SecretString=value)

    s3 = client("s3")
    for bucket in (registry.landing_bucket, lake_bucket):
        location = {} if central_region == "us-east-1" else {
            "CreateBucketConfiguration": {"LocationConstraint": central_region}}
        s3.create_bucket(Bucket=bucket, **location)
    policy = iam_policy("landing-bucket-policy", registry)
    # moto 5.2.5 checks bucket policies on every S3 call and takes a statement whose Condition it
    # has no value for as a refusal, Deny or Allow alike (IAMPolicyStatement._check_conditions):
    # DenyInsecureTransport would lock everyone out. The double seeds the policy without it.
    policy["Statement"] = [st for st in policy["Statement"] if "Condition" not in st]
    s3.put_bucket_policy(Bucket=registry.landing_bucket, Policy=json.dumps(policy))

    for t in tenants:
        _seed_tenant(registry, t, external_ids[t.tenant_id], (items or {}).get(t.tenant_id, {}), endpoint_url)
    return Seeded(endpoint_url, central, central_region, key["AccessKeyId"], key["SecretAccessKey"], role_arn,
                  registry.landing_bucket, lake_bucket, external_ids, keys)


def _fix_access_key(account: str, generated: str, key_id: str, secret: str) -> dict:
    """IAM chooses access key ids; moto keeps them in its backend, where this one is renamed."""
    from moto.iam.models import iam_backends

    backend = iam_backends[account]["aws"]
    key = backend.access_keys.pop(generated)
    key.access_key_id, key.secret_access_key = key_id, secret
    backend.access_keys[key_id] = key
    return {"AccessKeyId": key_id, "SecretAccessKey": secret}


def _seed_tenant(registry, tenant, external_id: str, items: Mapping[str, list[dict]], endpoint_url) -> None:
    iam = account_client("iam", tenant.aws_account_id, tenant.region, endpoint_url)
    path, _, name = tenant.role_arn.split(":role", 1)[1].rpartition("/")
    iam.create_role(RoleName=name, Path=f"{path}/", AssumeRolePolicyDocument=json.dumps(
        iam_policy("tenant-export-role-trust", registry, ExternalId=external_id)))
    iam.put_role_policy(RoleName=name, PolicyName="tenantlake-export",
                        PolicyDocument=json.dumps(iam_policy("tenant-export-role-policy", registry, tenant=tenant)))
    ddb = tenant_client(tenant, "dynamodb", endpoint_url)
    for entity, table in tenant.tables.items():
        ddb.create_table(TableName=table, KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                         AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                         BillingMode="PAY_PER_REQUEST")
        ddb.update_continuous_backups(TableName=table, PointInTimeRecoverySpecification={
            "PointInTimeRecoveryEnabled": True})
        write_items(ddb, table, items.get(entity, []))


def write_items(dynamodb, table: str, items: list[dict]) -> None:
    """BatchWriteItem in DynamoDB's batches of 25, resending what comes back unprocessed."""
    for i in range(0, len(items), 25):
        pending = {table: [{"PutRequest": {"Item": item}} for item in items[i:i + 25]]}
        while pending:
            pending = dynamodb.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}

"""The central account, as the Airflow AWS connection describes it, and the IAM policies it needs.

`central_access(conn_id)` is the one place Airflow's connection machinery is read: the amazon
provider's AwsBaseHook resolves the connection (login/password or a profile or the environment's
credentials, `region_name`, `endpoint_url`, `service_config.<service>.endpoint_url`, `config_kwargs`,
`verify`, and `role_arn` with `assume_role_kwargs`), and its session assumes the connection's
role itself, refreshing it as it expires. The result is a plain tenantlake.aws.AwsAccess; from
there on nothing imports Airflow:

    central = central_access("aws_default")
    tenant = tenantlake.aws.tenant_access(registry.tenant("agency-001"), central)  # role + ExternalId
    dynamodb = tenant.client("dynamodb")
    lake = tenantlake.storage.open_store("s3://tenantlake-lake/", access=central)
    catalog = GlueCatalog("lake", client=central.client("glue"), **central.fileio_properties())

The role chain is: the connection's credentials -> the connection's `role_arn` (optional; assumed
by the provider) -> each tenant's `role_arn` with its ExternalId (tenantlake.aws). Note the
provider's rule for the first hop: it sends that AssumeRole to `service_config.sts.endpoint_url`
only, never to the global `endpoint_url` (amazon provider 9.39, AwsConnectionWrapper
.get_service_endpoint_url): against a local double set both.

`landing_account_id` (registry) is the central account's id: the account that owns the landing
bucket. Each export request names it as S3BucketOwner, so a tenant account writes into a bucket
it does not own; the landing bucket policy (iam/landing-bucket-policy.json) lets each tenant's
export role write only under tenant=<its id>/.

Regions: secrets (ExternalIds in SSM, pseudonym keys in Secrets Manager) are read in the
connection's `region_name`; see tenantlake.aws.

IAM policies ship as JSON under iam/ with ${Placeholders}; `iam_policy(name, registry, ...)`
renders one for a registry (statements naming ${TenantId} or ${TenantAccountId} are repeated once
per tenant).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from tenantlake.aws import AwsAccess
from tenantlake.settings import REPO

IAM_DIR = REPO / "iam"
TENANT_PLACEHOLDERS = ("${TenantId}", "${TenantAccountId}", "${TenantRegion}", "${TenantRoleArn}")
# Ours are capitalised, so IAM's own policy variables (${aws:username}) pass through untouched.
PLACEHOLDER = re.compile(r"\$\{([A-Z][A-Za-z]*)\}")


def central_access(aws_conn_id: str | None = "aws_default", region_name: str | None = None) -> AwsAccess:
    """The central account through the Airflow AWS connection (None: boto3's default chain)."""
    from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

    hook = AwsBaseHook(aws_conn_id=aws_conn_id, client_type="sts", region_name=region_name)
    wrapper = hook.conn_config
    session = hook.get_session(region_name=wrapper.region_name)
    endpoints = {service: cfg["endpoint_url"] for service, cfg in wrapper.service_config.items()
                 if isinstance(cfg, dict) and cfg.get("endpoint_url")}
    return AwsAccess(session=session, region=wrapper.region_name or session.region_name,
                     endpoint_url=wrapper.endpoint_url, service_endpoints=endpoints,
                     config=wrapper.botocore_config, verify=wrapper.verify)


def runtime():
    """The process's Runtime, with the central account reached through the Airflow connection in
    aws mode: every task, command and ops job takes this one (a Runtime made without it would reach
    the lake with boto3's and pyarrow's defaults: the real AWS endpoints, not the connection's)."""
    from tenantlake.runtime import Runtime

    return Runtime.from_env(central_access)


def iam_policy(name: str, registry=None, tenant=None, **values: str) -> dict:
    """iam/<name>.json with its ${Placeholders} filled from `values`.

    With a registry, CentralAccountId and LandingBucket default to its landing_account_id and
    landing_bucket (CentralPrincipalArn to that account's root), and each statement naming a
    tenant placeholder is repeated for every enabled tenant (the landing bucket policy, the
    central role's policy). With a tenant, its placeholders are filled once (the policies that
    live in one tenant's account). A placeholder left unfilled is an error naming it."""
    path = IAM_DIR / f"{name}.json"
    doc = json.loads(path.read_text())
    if registry is not None:
        values.setdefault("CentralAccountId", registry.landing_account_id)
        values.setdefault("LandingBucket", registry.landing_bucket)
    if "CentralAccountId" in values:
        values.setdefault("CentralPrincipalArn", f"arn:aws:iam::{values['CentralAccountId']}:root")
    if tenant is not None:
        values = {**values, **_tenant_values(tenant)}
    statements = []
    for statement in doc["Statement"]:
        text = json.dumps(statement)
        if tenant is None and registry is not None and any(p in text for p in TENANT_PLACEHOLDERS):
            statements += [_sid_for(_fill(text, path, {**values, **_tenant_values(t)}), t) for t in registry.enabled]
        else:
            statements.append(_fill(text, path, values))
    return {**doc, "Statement": statements}


def _tenant_values(tenant) -> dict[str, str]:
    return {"TenantId": tenant.tenant_id, "TenantAccountId": tenant.aws_account_id,
            "TenantRegion": tenant.region, "TenantRoleArn": tenant.role_arn}


def _sid_for(statement: dict, tenant) -> dict:
    """A repeated statement's Sid gets the tenant's id: Sids must be unique in a policy, and
    alphanumeric."""
    if "Sid" in statement:
        statement["Sid"] += re.sub(r"[^0-9A-Za-z]", "", tenant.tenant_id.title())
    return statement


def _fill(text: str, path: Path, values: dict[str, str]) -> dict:
    def value(m: re.Match) -> str:
        if m.group(1) not in values:
            raise ValueError(f"{path.name}: no value for ${{{m.group(1)}}}")
        return json.dumps(str(values[m.group(1)]))[1:-1]  # escaped as the JSON string it sits in

    return json.loads(PLACEHOLDER.sub(value, text))

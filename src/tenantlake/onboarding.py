"""Onboarding checks (`tenantlake onboard --tenant T --check`) and revoking a tenant's key.

Before a new agency's first run, everything its first FULL export needs is tried for real, each
check naming what to fix: the registry entry is valid; its secret references resolve (the
ExternalId, and a pseudonym key of 64 hex characters); its role is refused without the ExternalId
and assumed with it; point-in-time recovery is on for every table in its registry entry; the
landing bucket accepts an object under the tenant's own prefix from the tenant's role (what its
exports write; the bucket policy, iam/landing-bucket-policy.json, keeps each tenant to its own
prefix). The first run after onboarding is a FULL export (no watermark yet).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from botocore.exceptions import ClientError


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


def _code(e: Exception) -> str:
    return e.response["Error"]["Code"] if isinstance(e, ClientError) else type(e).__name__


def check_tenant(runtime, tenant_id: str) -> list[Check]:  # noqa: C901 - one checklist, read top-down
    """Every onboarding check for one tenant, in order; a check that cannot run because an earlier
    one failed says so."""
    from tenantlake import aws, pseudonyms
    from tenantlake.registry import RegistryError

    out: list[Check] = []
    try:
        tenant = runtime.registry.tenant(tenant_id)
    except RegistryError as e:
        return [Check("registry entry", False, str(e))]
    out.append(Check("registry entry", True, f"{len(tenant.tables)} tables, window {tenant.export_window}"))
    if runtime.settings.mode != "aws":
        key = pseudonyms.local_key(runtime.settings.home, tenant_id)
        out.append(Check("pseudonym key", len(key) == 32, "a local key file stands in for the secret store"))
        out.append(Check("AWS checks", True, "skipped: TENANTLAKE_MODE is local (set aws to check the account)"))
        return out
    central = runtime.central
    secrets = (("ExternalId secret", tenant.external_id_ref), ("pseudonym key secret", tenant.pseudonym_key_ref))
    for name, ref in secrets:
        try:
            value = aws.resolve_secret(ref, central)
            if ref == tenant.pseudonym_key_ref:
                pseudonyms.key_from_secret(ref, value)
            out.append(Check(name, True, f"{ref} resolves"))
        except Exception as e:  # noqa: BLE001 - reported with what to fix
            out.append(Check(name, False, f"{ref} does not resolve: {str(e)[:200]} (create it in the central "
                                          "account's region)"))
    if not all(c.ok for c in out):
        return out + [Check("tenant role", False, "not tried: a secret reference does not resolve")]
    sts = central.client("sts")
    try:
        sts.assume_role(RoleArn=tenant.role_arn, RoleSessionName=f"tenantlake-onboarding-{tenant_id}")
        out.append(Check("role refuses a caller without the ExternalId", False,
                         f"{tenant.role_arn} can be assumed without an ExternalId: add the sts:ExternalId condition "
                         "to its trust policy (iam/tenant-export-role-trust.json)"))
        return out
    except ClientError as e:
        out.append(Check("role refuses a caller without the ExternalId", True, f"refused ({_code(e)})"))
    try:
        access = aws.tenant_access(tenant, central)
        out.append(Check("role assumed with the ExternalId", True, tenant.role_arn))
    except Exception as e:  # noqa: BLE001
        out.append(Check("role assumed with the ExternalId", False, f"{str(e)[:300]}"))
        return out
    dynamodb = access.client("dynamodb")
    for entity, table in tenant.tables.items():
        name = f"point-in-time recovery: {entity}"
        try:
            status = dynamodb.describe_continuous_backups(TableName=table)["ContinuousBackupsDescription"][
                "PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"]
            fix = "" if status == "ENABLED" else " (turn PITR on: exports need it)"
            out.append(Check(name, status == "ENABLED", f"{table}: {status}{fix}"))
        except ClientError as e:
            out.append(Check(name, False, f"{table}: {_code(e)} (does the table exist in {tenant.region}? "
                                          "may the role describe it?)"))
    s3 = access.client("s3")
    bucket = runtime.registry.landing_bucket
    probe = f"tenant={tenant_id}/_onboarding-check"
    try:
        s3.put_object(Bucket=bucket, Key=probe, Body=b"tenantlake onboarding check", ACL="bucket-owner-full-control")
        out.append(Check("landing bucket accepts the tenant's exports", True, f"s3://{bucket}/{probe} written"))
    except ClientError as e:
        out.append(Check("landing bucket accepts the tenant's exports", False,
                         f"s3://{bucket}/tenant={tenant_id}/: {_code(e)} (apply iam/landing-bucket-policy.json)"))
    return out


def key_revoker(runtime) -> Callable[[str], str]:
    """For offboarding: drop the tenant's pseudonym key, so a pseudonym left anywhere can no longer
    be tied to a consumer id. Returns what was done (or what to do by hand)."""
    def revoke(tenant_id: str) -> str:
        if runtime.settings.mode != "aws":
            from pathlib import Path

            path = Path(runtime.settings.home) / "secrets" / f"pseudonym-{tenant_id}.key"
            existed = path.exists()
            path.unlink(missing_ok=True)
            return f"local key file {'deleted' if existed else 'already absent'}: {path}"
        ref = runtime.registry.tenant(tenant_id).pseudonym_key_ref
        kind, _, name = ref.partition(":")
        try:
            if kind == "secretsmanager":
                runtime.central.client("secretsmanager").delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)
            else:
                runtime.central.client("ssm").delete_parameter(Name=name)
            return f"{ref} deleted"
        except ClientError as e:
            return f"{ref} NOT deleted ({_code(e)}): delete it by hand"
    return revoke

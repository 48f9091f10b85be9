"""`tenantlake onboard --check` on the export double: every check passes for a well-set-up tenant,
and each one fails, naming what to fix, when its own piece is broken."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

from tenantlake import aws
from tenantlake.onboarding import check_tenant, key_revoker
from tenantlake.settings import Settings
from tenantlake_dev.aws_double import export_double, seed, tenant_client


@dataclass
class FakeRuntime:
    """What the checks read from a runtime: settings, registry and the central account."""

    settings: Settings
    registry: object
    central: object


@pytest.fixture
def onboarded(registry, tmp_path):
    tenant = registry.tenant("agency-001")
    aws.forget()
    with export_double() as double:
        seeded = seed(registry, tenants=[tenant])
        settings = Settings("aws", str(tmp_path), "s3://tenantlake-landing/", "s3://tenantlake-lake/lake", "aws_default")
        yield FakeRuntime(settings, registry, seeded.central_access()), tenant, seeded, double
    aws.forget()


def failing(checks):
    return {c.name: c.detail for c in checks if not c.ok}


def test_a_well_set_up_tenant_passes_every_check(onboarded):
    runtime, tenant, _, _ = onboarded
    checks = check_tenant(runtime, tenant.tenant_id)
    assert failing(checks) == {}
    names = [c.name for c in checks]
    assert "role refuses a caller without the ExternalId" in names and "landing bucket accepts the tenant's exports" in names
    assert sum(n.startswith("point-in-time recovery") for n in names) == len(tenant.tables)


def test_pitr_off_on_one_table_is_named(onboarded):
    runtime, tenant, _, _ = onboarded
    tenant_client(tenant).update_continuous_backups(TableName=tenant.tables["Debt"], PointInTimeRecoverySpecification={
        "PointInTimeRecoveryEnabled": False})
    assert list(failing(check_tenant(runtime, tenant.tenant_id))) == ["point-in-time recovery: Debt"]


def test_a_role_assumable_without_the_external_id_fails(onboarded):
    runtime, tenant, seeded, _ = onboarded
    tenant_client(tenant, "iam").update_assume_role_policy(RoleName="tenantlake-export", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                "Principal": {"AWS": f"arn:aws:iam::{seeded.central_account}:root"}}]}))
    bad = failing(check_tenant(runtime, tenant.tenant_id))
    assert "sts:ExternalId" in bad["role refuses a caller without the ExternalId"]


def test_a_wrong_external_id_fails_the_role_check(onboarded):
    runtime, tenant, _, _ = onboarded
    runtime.central.client("ssm").put_parameter(Name=tenant.external_id_ref.removeprefix("ssm:"), Value="wrong",
                                                Type="SecureString", Overwrite=True)
    aws.forget()
    assert list(failing(check_tenant(runtime, tenant.tenant_id))) == ["role assumed with the ExternalId"]


def test_missing_secrets_are_named_by_reference(onboarded):
    runtime, tenant, _, _ = onboarded
    runtime.central.client("secretsmanager").delete_secret(
        SecretId=tenant.pseudonym_key_ref.removeprefix("secretsmanager:"), ForceDeleteWithoutRecovery=True)
    bad = failing(check_tenant(runtime, tenant.tenant_id))
    assert tenant.pseudonym_key_ref in bad["pseudonym key secret"] and "tenant role" in bad


def test_a_missing_landing_bucket_fails(onboarded):
    runtime, tenant, seeded, _ = onboarded
    s3 = runtime.central.client("s3")
    s3.delete_bucket_policy(Bucket=seeded.landing_bucket)
    s3.delete_bucket(Bucket=seeded.landing_bucket)
    assert "landing bucket accepts the tenant's exports" in failing(check_tenant(runtime, tenant.tenant_id))


def test_an_invalid_registry_entry_is_the_only_check(onboarded):
    runtime, _, _, _ = onboarded
    from tenantlake.registry import parse_registry

    text = "version: 1\nlanding_bucket: tenantlake-landing\ntenants:\n  - tenant_id: agency-009\n    tables: {}\n"
    runtime.registry = parse_registry(text, "t.yaml")
    checks = check_tenant(runtime, "agency-009")
    assert [c.name for c in checks] == ["registry entry"] and not checks[0].ok and "agency-009" in checks[0].detail


def test_revoking_drops_the_pseudonym_key(onboarded):
    runtime, tenant, _, _ = onboarded
    assert key_revoker(runtime)(tenant.tenant_id) == f"{tenant.pseudonym_key_ref} deleted"
    aws.forget()
    assert "pseudonym key secret" in failing(check_tenant(runtime, tenant.tenant_id))

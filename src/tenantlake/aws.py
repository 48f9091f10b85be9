"""Reaching a tenant's account: the central account's session (from the Airflow AWS connection),
the tenant's ExternalId (resolved from its reference at run time), and the assumed role.

The ExternalId never appears in a message, a log line or an XCom: only its reference does.
A role that can be assumed without the ExternalId is refused (the confused-deputy guard AWS
recommends for third-party roles), and so is a wrong one.
"""

from __future__ import annotations

import logging
import time
from contextlib import contextmanager

import boto3
from botocore.exceptions import ClientError

SECRET_TTL = 300  # seconds a resolved ExternalId is reused before it is read again
_secrets: dict[str, tuple[float, str]] = {}
_sessions: dict[str, tuple[float, boto3.Session]] = {}


class AccessError(RuntimeError):
    """A tenant account cannot be reached safely; the message says why (never the secret)."""


def central_session(aws_conn_id: str | None) -> boto3.Session:
    """The central account, through the amazon provider's AWS connection machinery."""
    from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

    return AwsBaseHook(aws_conn_id=aws_conn_id, client_type="sts").get_session()


@contextmanager
def _quiet_botocore():
    """botocore logs whole response bodies at DEBUG, secret values included: keep it at INFO or
    above while a secret is read, whatever the logging configuration says."""
    logger = logging.getLogger("botocore")
    before = logger.level
    logger.setLevel(max(before, logging.INFO))
    try:
        yield
    finally:
        logger.setLevel(before)


def resolve_secret(ref: str, session: boto3.Session, region: str | None = None) -> str:
    """The value behind 'ssm:/name' or 'secretsmanager:id', cached for SECRET_TTL seconds."""
    cached = _secrets.get(ref)
    if cached and cached[0] > time.monotonic():
        return cached[1]
    kind, _, name = ref.partition(":")
    try:
        with _quiet_botocore():
            if kind == "ssm":
                value = session.client("ssm", region_name=region).get_parameter(
                    Name=name, WithDecryption=True)["Parameter"]["Value"]
            elif kind == "secretsmanager":
                value = session.client("secretsmanager", region_name=region).get_secret_value(
                    SecretId=name)["SecretString"]
            else:
                raise AccessError(f"{ref}: a secret reference is ssm:/... or secretsmanager:...")
    except ClientError as e:
        raise AccessError(f"cannot read secret {ref}: {e.response['Error']['Code']}") from None
    _secrets[ref] = (time.monotonic() + SECRET_TTL, value)
    return value


def _assume(sts, tenant, **extra):
    return sts.assume_role(RoleArn=tenant.role_arn, RoleSessionName=f"tenantlake-{tenant.tenant_id}",
                           DurationSeconds=3600, **extra)["Credentials"]


def tenant_session(tenant, central: boto3.Session, require_external_id: bool = True) -> boto3.Session:
    """A session in the tenant's account, cached until shortly before its credentials expire."""
    cached = _sessions.get(tenant.tenant_id)
    if cached and cached[0] > time.time():
        return cached[1]
    external_id = resolve_secret(tenant.external_id_ref, central, tenant.region)
    sts = central.client("sts", region_name=tenant.region)
    if require_external_id:
        try:
            _assume(sts, tenant)
        except ClientError:
            pass  # refused without the ExternalId: as it must be
        else:
            raise AccessError(f"tenant {tenant.tenant_id}: role {tenant.role_arn} can be assumed without "
                              "an ExternalId; its trust policy must require sts:ExternalId")
    try:
        creds = _assume(sts, tenant, ExternalId=external_id)
    except ClientError as e:
        raise AccessError(f"tenant {tenant.tenant_id}: cannot assume {tenant.role_arn} with the ExternalId "
                          f"from {tenant.external_id_ref} ({e.response['Error']['Code']}): a wrong "
                          "ExternalId, or a trust policy that does not name the central account") from None
    session = boto3.Session(aws_access_key_id=creds["AccessKeyId"],
                            aws_secret_access_key=creds["SecretAccessKey"],
                            aws_session_token=creds["SessionToken"], region_name=tenant.region)
    _sessions[tenant.tenant_id] = (creds["Expiration"].timestamp() - 300, session)
    return session


def forget() -> None:
    """Drop cached secrets and sessions (tests, and a rotated ExternalId)."""
    _secrets.clear()
    _sessions.clear()

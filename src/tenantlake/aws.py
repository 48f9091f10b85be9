"""Reaching AWS: one plain object for "how to reach an account" (AwsAccess), the tenant's role
assumed with its ExternalId, and secrets read by reference.

AwsAccess holds a boto3 session and everything else a client needs that boto3 would otherwise
take from the environment: the region, the endpoint_url (and per-service endpoints), the botocore
config. Every client of the pipeline comes from `AwsAccess.client`, so a setting made once (in
the Airflow connection, see tenantlake.connections) reaches S3, DynamoDB, STS, SSM, Secrets
Manager, Glue and the Iceberg FileIO alike. This module never imports Airflow (only boto3): the
command line, benchmarks and any script reach AWS the same way the DAGs do.

Regions:
  - Secrets are the central account's: SSM parameters (ExternalIds) and Secrets Manager secrets
    (pseudonym keys) are read in the central account's region, AwsAccess.region, which is the
    Airflow connection's `region_name` (else boto3's default region). Keep them all in that one
    region, whatever region each tenant's tables are in.
  - A tenant's DynamoDB is reached in the tenant's `region` (registry); the tenant's role is
    assumed through STS in the central region.

The ExternalId never appears in a message, a log line or an XCom: only its reference does.
A role that can be assumed without the ExternalId is refused (the confused-deputy guard AWS
recommends for third-party roles), and so is a wrong one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from types import MappingProxyType

import boto3
import botocore.loaders
import botocore.session
from botocore.config import Config
from botocore.exceptions import ClientError

SECRET_TTL = 300  # seconds a resolved ExternalId is reused before it is read again
SESSION_SECONDS = 3600  # a tenant role session; reused until 5 minutes before it expires
_secrets: dict[tuple, tuple[float, str]] = {}
_tenants: dict[tuple, tuple[float, AwsAccess]] = {}


_loader: botocore.loaders.Loader | None = None


def new_session(access_key: str | None = None, secret_key: str | None = None, token: str | None = None,
                region: str | None = None) -> boto3.Session:
    """A boto3 Session sharing one model loader with every other made here: a fresh session
    otherwise parses each service's JSON models again, ~0.3 s per client (a tenant's assumed
    role is a new session per tenant and run)."""
    global _loader
    if _loader is None:
        _loader = botocore.loaders.create_loader()
    core = botocore.session.get_session()
    core.register_component("data_loader", _loader)
    return boto3.Session(aws_access_key_id=access_key, aws_secret_access_key=secret_key, aws_session_token=token,
                         region_name=region, botocore_session=core)


class AccessError(RuntimeError):
    """A tenant account cannot be reached safely; the message says why (never the secret)."""


@dataclass(frozen=True, eq=False)
class AwsAccess:
    """How to reach one AWS account: a boto3 session plus the client settings boto3 would
    otherwise guess. `service_endpoints` overrides `endpoint_url` per boto3 service name, as the
    amazon provider's `service_config` does."""

    session: boto3.Session
    region: str | None = None
    endpoint_url: str | None = None
    service_endpoints: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    config: Config | None = None
    verify: bool | str | None = None

    @classmethod
    def default(cls, region: str | None = None, endpoint_url: str | None = None) -> AwsAccess:
        """boto3's own credential chain (an instance's or task's role, a laptop's profile)."""
        session = new_session(region=region)
        return cls(session, region or session.region_name, endpoint_url)

    def endpoint_for(self, service: str) -> str | None:
        return self.service_endpoints.get(service, self.endpoint_url)

    def client(self, service: str, region: str | None = None):
        return self.session.client(service, region_name=region or self.region,
                                   endpoint_url=self.endpoint_for(service), config=self.config,
                                   verify=self.verify)

    def with_credentials(self, access_key: str, secret_key: str, token: str | None,
                         region: str | None = None) -> AwsAccess:
        """Another identity reached the same way (same endpoints, config and TLS settings)."""
        session = new_session(access_key, secret_key, token, region or self.region)
        return replace(self, session=session, region=region or self.region)

    def frozen_credentials(self):
        """The session's credentials now (refreshed first if they are about to expire)."""
        creds = self.session.get_credentials()
        if creds is None:
            raise AccessError("no AWS credentials: set them in the Airflow connection or the environment")
        return creds.get_frozen_credentials()

    def account_id(self) -> str:
        return self.client("sts").get_caller_identity()["Account"]

    def fileio_properties(self) -> dict[str, str]:
        """pyiceberg's PyArrow FileIO settings reaching the same S3 as `client("s3")`.

        The credentials are a snapshot: refresh by calling again before they expire (an assumed
        role's last an hour). s3.region is always set: without it pyiceberg asks S3 where each
        bucket is, a call that ignores s3.endpoint."""
        creds = self.frozen_credentials()
        props = {"s3.region": self.region or "us-east-1", "s3.access-key-id": creds.access_key,
                 "s3.secret-access-key": creds.secret_key}
        if creds.token:
            props["s3.session-token"] = creds.token
        if self.endpoint_for("s3"):
            props["s3.endpoint"] = self.endpoint_for("s3")
        return props

    def glue_properties(self) -> dict[str, str]:
        """pyiceberg GlueCatalog's own client settings (glue.*), for `load_catalog(type="glue")`
        where a client cannot be handed over. Prefer `GlueCatalog(name, client=access.client("glue"),
        **access.fileio_properties())`: that client refreshes its credentials, these do not."""
        creds = self.frozen_credentials()
        props = {"type": "glue", "glue.region": self.region or "us-east-1",
                 "glue.access-key-id": creds.access_key, "glue.secret-access-key": creds.secret_key}
        if creds.token:
            props["glue.session-token"] = creds.token
        if self.endpoint_for("glue"):
            props["glue.endpoint"] = self.endpoint_for("glue")
        return {**props, **self.fileio_properties()}

    # A worker process (ingest decodes files in a process pool) rebuilds the access from a
    # snapshot: boto3 sessions do not pickle. The snapshot's credentials are not refreshed there.
    def __getstate__(self):
        creds = self.frozen_credentials()
        return {"creds": (creds.access_key, creds.secret_key, creds.token), "region": self.region,
                "endpoint_url": self.endpoint_url, "service_endpoints": dict(self.service_endpoints),
                "config": self.config, "verify": self.verify}

    def __setstate__(self, state):
        session = new_session(*state["creds"], region=state["region"])
        for name, value in (("session", session), ("region", state["region"]),
                            ("endpoint_url", state["endpoint_url"]),
                            ("service_endpoints", MappingProxyType(state["service_endpoints"])),
                            ("config", state["config"]), ("verify", state["verify"])):
            object.__setattr__(self, name, value)


def as_access(where: AwsAccess | boto3.Session) -> AwsAccess:
    """Callers written before AwsAccess pass a bare boto3 Session: it keeps boto3's defaults."""
    if isinstance(where, AwsAccess):
        return where
    return AwsAccess(where, where.region_name)


@contextmanager
def _quiet_botocore():
    """botocore logs whole requests and responses at DEBUG, secret values included: keep it at
    INFO or above while a secret is read or sent, whatever the logging configuration says."""
    logger = logging.getLogger("botocore")
    before = logger.level
    logger.setLevel(max(before, logging.INFO))
    try:
        yield
    finally:
        logger.setLevel(before)


def resolve_secret(ref: str, access: AwsAccess | boto3.Session, region: str | None = None) -> str:
    """The value behind 'ssm:/name' or 'secretsmanager:id', read in `region` (default: the
    access's region, the central one), cached for SECRET_TTL seconds."""
    access = as_access(access)
    region = region or access.region
    cache_key = (ref, region, access.endpoint_for("ssm"), access.endpoint_for("secretsmanager"))
    cached = _secrets.get(cache_key)
    if cached and cached[0] > time.monotonic():
        return cached[1]
    kind, _, name = ref.partition(":")
    try:
        with _quiet_botocore():
            if kind == "ssm":
                value = access.client("ssm", region).get_parameter(
                    Name=name, WithDecryption=True)["Parameter"]["Value"]
            elif kind == "secretsmanager":
                value = access.client("secretsmanager", region).get_secret_value(SecretId=name)["SecretString"]
            else:
                raise AccessError(f"{ref}: a secret reference is ssm:/... or secretsmanager:...")
    except ClientError as e:
        raise AccessError(f"cannot read secret {ref}: {e.response['Error']['Code']}") from None
    _secrets[cache_key] = (time.monotonic() + SECRET_TTL, value)
    return value


def _assume(sts, tenant, **extra):
    with _quiet_botocore():  # botocore's DEBUG lines carry the request's parameters: the ExternalId
        return sts.assume_role(RoleArn=tenant.role_arn, RoleSessionName=f"tenantlake-{tenant.tenant_id}",
                               DurationSeconds=SESSION_SECONDS, **extra)["Credentials"]


def tenant_access(tenant, central: AwsAccess | boto3.Session, require_external_id: bool = True) -> AwsAccess:
    """The tenant's account, through its role assumed with the ExternalId, reached the same way as
    the central account (endpoints, config) in the tenant's region. Cached until shortly before
    the role session expires."""
    central = as_access(central)
    cache_key = (tenant.tenant_id, tenant.role_arn, central.endpoint_for("sts"), central.endpoint_for("dynamodb"))
    cached = _tenants.get(cache_key)
    if cached and cached[0] > time.time():
        return cached[1]
    external_id = resolve_secret(tenant.external_id_ref, central)
    sts = central.client("sts")
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
    access = central.with_credentials(creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"],
                                      tenant.region)
    _tenants[cache_key] = (creds["Expiration"].timestamp() - 300, access)
    return access


def tenant_session(tenant, central: AwsAccess | boto3.Session, require_external_id: bool = True) -> boto3.Session:
    """Compatibility: the tenant's boto3 session. A client made from it directly misses the
    connection's endpoint_url; use tenant_access(...).client(...) instead."""
    return tenant_access(tenant, central, require_external_id).session


def forget() -> None:
    """Drop cached secrets and tenant sessions (tests, and a rotated ExternalId)."""
    _secrets.clear()
    _tenants.clear()

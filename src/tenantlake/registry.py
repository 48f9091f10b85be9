"""The tenant registry: which agencies exist, where their data lives, and how to reach it.

A versioned YAML file, validated by the models below. It holds references to secrets (an SSM
parameter or a Secrets Manager secret), never the secrets themselves. A bad registry fails with a
message naming the entry and the field, because a typo here would otherwise surface as a
confusing AWS error in one tenant's task hours later.
"""

from __future__ import annotations

import os
import re
from datetime import timedelta
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from tenantlake.contracts import ENTITIES
from tenantlake.settings import REPO

# Where the shipped registry lives: <repo>/dags/registry/tenants.yaml (tenantlake.settings.REPO).
# TENANTLAKE_REGISTRY points elsewhere (a test fleet, a production registry).
DEFAULT_PATH = REPO / "dags" / "registry" / "tenants.yaml"

SecretRef = Annotated[
    str,
    Field(
        pattern=r"^(ssm:/[A-Za-z0-9_./-]+|secretsmanager:[A-Za-z0-9/_+=.@-]+)$",
        description="ssm:/parameter/name or secretsmanager:secret-id; the value is resolved at run time",
    ),
]


class RegistryError(ValueError):
    """The registry file is unreadable or invalid; the message names the entry and field."""


def parse_window(text: str) -> timedelta:
    m = re.fullmatch(r"(\d+)\s*(m|h)", text.strip())
    if not m:
        raise ValueError(f"{text!r} is not a window like '15m' or '1h'")
    n, unit = int(m.group(1)), m.group(2)
    return timedelta(minutes=n) if unit == "m" else timedelta(hours=n)


class Tenant(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    tenant_id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{1,62}$")
    display_name: str = Field(min_length=1)
    aws_account_id: str = Field(pattern=r"^\d{12}$")
    region: str = Field(pattern=r"^[a-z]{2}(-gov)?-[a-z]+-\d$")
    role_arn: str = Field(pattern=r"^arn:aws[a-z-]*:iam::\d{12}:role/[A-Za-z0-9+=,.@_/-]{1,512}$")
    external_id_ref: SecretRef
    pseudonym_key_ref: SecretRef
    # DynamoDB table name per entity (Amplify names them <Model>-<apiId>-<env>).
    tables: dict[str, Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{3,255}$")]]
    export_window: str = "1h"  # schedule hint: the incremental window to ask for
    # where changes come from after the first full export: incremental exports, or DynamoDB
    # Streams records landed in S3 by Firehose or EventBridge Pipes
    change_source: Literal["exports", "streams"] = "exports"
    enabled: bool = True

    @field_validator("tables")
    @classmethod
    def _known_entities(cls, tables: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(tables) - set(ENTITIES))
        if unknown:
            raise ValueError(f"unknown entity {', '.join(unknown)}; known: {', '.join(ENTITIES)}")
        if not tables:
            raise ValueError("at least one table is needed")
        return tables

    @field_validator("export_window")
    @classmethod
    def _window_in_dynamodb_range(cls, text: str) -> str:
        window = parse_window(text)
        if not timedelta(minutes=15) <= window <= timedelta(hours=24):
            raise ValueError(f"{text!r} is outside DynamoDB's incremental range of 15m to 24h")
        return text

    @model_validator(mode="after")
    def _role_in_tenant_account(self) -> Tenant:
        role_account = self.role_arn.split(":")[4]
        if role_account != self.aws_account_id:
            raise ValueError(
                f"role_arn is in account {role_account}, not the tenant's {self.aws_account_id}"
            )
        return self

    def table_arn(self, entity: str) -> str:
        return f"arn:aws:dynamodb:{self.region}:{self.aws_account_id}:table/{self.tables[entity]}"


class Registry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: int = Field(ge=1, le=1)
    landing_bucket: str = Field(pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
    # the central account owning the landing bucket (ExportTableToPointInTime's S3BucketOwner)
    landing_account_id: str = Field(default="200000000000", pattern=r"^\d{12}$")
    tenants: list[Tenant]

    @model_validator(mode="after")
    def _unique_ids(self) -> Registry:
        seen: dict[str, int] = {}
        for i, t in enumerate(self.tenants):
            if t.tenant_id in seen:
                raise ValueError(
                    f"tenants[{i}].tenant_id: duplicate tenant_id {t.tenant_id!r} "
                    f"(first at tenants[{seen[t.tenant_id]}])"
                )
            seen[t.tenant_id] = i
        return self

    @cached_property
    def by_id(self) -> dict[str, Tenant]:
        return {t.tenant_id: t for t in self.tenants}

    def tenant(self, tenant_id: str) -> Tenant:
        try:
            return self.by_id[tenant_id]
        except KeyError:
            raise RegistryError(f"tenant {tenant_id!r} is not in the registry") from None

    @property
    def enabled(self) -> list[Tenant]:
        return [t for t in self.tenants if t.enabled]


def _describe(error: dict, raw: dict) -> str:
    """'tenants[2] (agency-003).aws_account_id: <why>' from one pydantic error."""
    loc = list(error["loc"])
    where = ""
    if len(loc) >= 2 and loc[0] == "tenants" and isinstance(loc[1], int):
        i = loc[1]
        try:
            tid = raw["tenants"][i].get("tenant_id", "?")
        except (KeyError, IndexError, TypeError, AttributeError):
            tid = "?"
        where = f"tenants[{i}] ({tid})"
        loc = loc[2:]
    field = ".".join(str(p) for p in loc)
    msg = error["msg"].removeprefix("Value error, ")
    return f"{where}{'.' if where and field else ''}{field}: {msg}" if (where or field) else msg


def load_registry(path: str | os.PathLike | None = None) -> Registry:
    """Read and validate a registry; RegistryError names the file, entry and field on failure."""
    path = Path(path or os.environ.get("TENANTLAKE_REGISTRY") or DEFAULT_PATH)
    try:
        raw = yaml.safe_load(path.read_text())
    except OSError as e:
        raise RegistryError(f"{path}: cannot read the registry: {e.strerror}") from None
    except yaml.YAMLError as e:
        raise RegistryError(f"{path}: not valid YAML: {e}") from None
    if not isinstance(raw, dict):
        raise RegistryError(f"{path}: expected a mapping with version, landing_bucket and tenants")
    try:
        return Registry.model_validate(raw)
    except ValidationError as e:
        problems = "; ".join(_describe(err, raw) for err in e.errors())
        raise RegistryError(f"{path}: {problems}") from None

"""The two small configuration tables ops reads: prices and freshness objectives.

Both are versioned YAML files in the checkout's config/ folder (TENANTLAKE_PRICES and
TENANTLAKE_FRESHNESS point elsewhere), validated by the models below. Each price carries its unit,
the day it was read and where, so an estimate can always say what it was computed from; the code
asks for a price by name and the unit it expects, and refuses a file whose unit changed under it.
"""

from __future__ import annotations

import os
from datetime import date, timedelta
from functools import cached_property
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from tenantlake.contracts import ENTITIES
from tenantlake.registry import FRESHNESS_RANGE, Tenant, parse_duration
from tenantlake.settings import REPO

CONFIG = REPO / "config"


class ConfigError(ValueError):
    """A configuration file is unreadable or invalid; the message names the file and the field."""


class Price(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    price: float = Field(ge=0)
    unit: str = Field(min_length=1)
    what: str = Field(min_length=1)
    source: str = Field(pattern=r"^https://")
    read: date
    checked: bool


class Deployment(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    warehouse_base_rpu: int = Field(ge=1)


class Prices(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: int = Field(ge=1, le=1)
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    region: str
    bytes_per_gb: int = Field(gt=0)
    prices: dict[str, Price]
    deployment: Deployment
    source: str | None = None

    def price(self, name: str, unit: str) -> float:
        """The price called `name`, which must be quoted in `unit` (so a file whose unit changed
        is refused instead of silently multiplying the wrong thing)."""
        found = self.prices.get(name)
        if found is None:
            raise ConfigError(f"{self.source}: no price {name!r}; prices: {', '.join(self.prices)}")
        if found.unit != unit:
            raise ConfigError(f"{self.source}: price {name!r} is in {found.unit!r}; the estimate needs {unit!r}")
        return found.price

    @property
    def oldest_read(self) -> date:
        """The day the least recently read price was read: how old an estimate's inputs may be."""
        return min(p.read for p in self.prices.values())


class Objectives(BaseModel):
    """Freshness objectives per entity; a tenant's registry entry may override them per table."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: int = Field(ge=1, le=1)
    default: str
    entities: dict[str, str] = Field(default_factory=dict)
    source: str | None = None

    @field_validator("default")
    @classmethod
    def _duration(cls, text: str) -> str:
        _in_range(text)
        return text

    @field_validator("entities")
    @classmethod
    def _known_entities(cls, entities: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(entities) - set(ENTITIES))
        if unknown:
            raise ValueError(f"unknown entity {', '.join(unknown)}; known: {', '.join(ENTITIES)}")
        for text in entities.values():
            _in_range(text)
        return entities

    @cached_property
    def _parsed(self) -> dict[str, timedelta]:
        return {e: parse_duration(t) for e, t in self.entities.items()}

    def objective(self, tenant: Tenant | None, entity: str) -> timedelta:
        """The tenant's own objective for the table if its registry entry sets one, else the
        entity's, else the default."""
        own = tenant.freshness_objective(entity) if tenant is not None else None
        return own or self._parsed.get(entity) or parse_duration(self.default)


def _in_range(text: str) -> None:
    objective = parse_duration(text)
    low, high = FRESHNESS_RANGE
    if not low <= objective <= high:
        raise ValueError(f"{text!r} is outside {low} .. {high.days} days")


def _load(model, path: Path):
    try:
        raw = yaml.safe_load(path.read_text())
    except OSError as e:
        raise ConfigError(f"{path}: cannot read it: {e.strerror}") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping")
    try:
        return model.model_validate({**raw, "source": str(path)})
    except ValidationError as e:
        problems = "; ".join(f"{'.'.join(map(str, err['loc']))}: {err['msg'].removeprefix('Value error, ')}"
                             for err in e.errors())
        raise ConfigError(f"{path}: {problems}") from None


def load_prices(path: str | os.PathLike | None = None) -> Prices:
    return _load(Prices, Path(path or os.environ.get("TENANTLAKE_PRICES") or CONFIG / "prices.yaml"))


def load_objectives(path: str | os.PathLike | None = None) -> Objectives:
    return _load(Objectives, Path(path or os.environ.get("TENANTLAKE_FRESHNESS") or CONFIG / "freshness.yaml"))

"""Run-time settings, from the environment (read when a task runs, never at DAG parse time).

  TENANTLAKE_MODE       local (default: the embedded default) or aws
  TENANTLAKE_HOME       local root holding landing/ and lake/ (default: <repo>/.demo)
  TENANTLAKE_LANDING    where exports land: a folder or s3://bucket/ (default: $HOME/landing,
                        or the registry's landing bucket in aws mode)
  TENANTLAKE_LAKE       the lake: a folder or s3://bucket/prefix (default: $HOME/lake)
  TENANTLAKE_CATALOG    the lake's Iceberg catalog: sql (default in local mode) or glue (default in
                        aws mode; the Glue Data Catalog of the central account)
  TENANTLAKE_CATALOG_URI  the SQL catalog's database (default: SQLite at <lake>/_catalog/iceberg.db
                        for a local lake, <home>/iceberg-catalog.db for a lake in S3)
  TENANTLAKE_NAMESPACE  prefix of the lake's namespaces / Glue databases (default: tenantlake, giving
                        tenantlake_raw, tenantlake_quarantine, tenantlake_protected, tenantlake_ops)
  TENANTLAKE_SNAPSHOT_RETENTION_HOURS  how long the lake keeps old snapshots for time travel
                        (default: 72); erasure and offboarding expire the ones holding removed rows
  TENANTLAKE_AWS_CONN   the Airflow AWS connection of the central account (default: aws_default)
  TENANTLAKE_ROOT       the checkout holding dags/, sql/ and expectations/ (default: the one this
                        package was installed from in editable mode; the image sets /opt/tenantlake)
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from tenantlake.arguments import TEN_YEARS_H

REPO = Path(os.environ.get("TENANTLAKE_ROOT") or Path(__file__).resolve().parents[2])


class SettingsError(ValueError):
    """An environment variable that does not say what it must; the message names it."""


def _hours_env(name: str, default: str) -> float:
    text = os.environ.get(name, default)
    try:
        hours = float(text)
    except ValueError:
        raise SettingsError(f"{name}={text!r}: expected a number of hours") from None
    if not 0 <= hours <= TEN_YEARS_H:  # nan fails this too, as the command line's --retention-hours
        raise SettingsError(f"{name}={text!r}: expected a number of hours from 0 to ten years")
    return hours


@dataclass(frozen=True)
class Settings:
    mode: str
    home: str
    landing: str
    lake: str
    aws_conn_id: str
    catalog: str = "sql"
    catalog_uri: str = ""
    namespace: str = "tenantlake"
    snapshot_retention_hours: float = 72.0

    @classmethod
    def from_env(cls, landing_bucket: str | None = None) -> Settings:
        mode = os.environ.get("TENANTLAKE_MODE", "local")
        if mode not in ("local", "aws"):
            raise SettingsError(f"TENANTLAKE_MODE={mode!r}: expected local or aws")
        home = os.environ.get("TENANTLAKE_HOME", str(REPO / ".demo"))
        default_landing = f"s3://{landing_bucket}/" if mode == "aws" and landing_bucket else f"{home}/landing"
        lake = os.environ.get("TENANTLAKE_LAKE", f"{home}/lake")
        catalog = os.environ.get("TENANTLAKE_CATALOG") or ("glue" if mode == "aws" else "sql")
        default_uri = f"sqlite:///{home}/iceberg-catalog.db" if lake.startswith("s3://") else \
            f"sqlite:///{lake}/_catalog/iceberg.db"
        return cls(mode, home, os.environ.get("TENANTLAKE_LANDING", default_landing), lake,
                   os.environ.get("TENANTLAKE_AWS_CONN", "aws_default"), catalog,
                   os.environ.get("TENANTLAKE_CATALOG_URI", default_uri),
                   os.environ.get("TENANTLAKE_NAMESPACE", "tenantlake"),
                   _hours_env("TENANTLAKE_SNAPSHOT_RETENTION_HOURS", "72"))

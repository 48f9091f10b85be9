"""Run-time settings, from the environment (read when a task runs, never at DAG parse time).

  TENANTLAKE_MODE       local (default: the embedded default) or aws
  TENANTLAKE_HOME       local root holding landing/ and lake/ (default: <repo>/.demo)
  TENANTLAKE_LANDING    where exports land: a folder or s3://bucket/ (default: $HOME/landing,
                        or the registry's landing bucket in aws mode)
  TENANTLAKE_LAKE       the lake: a folder or s3://bucket/prefix (default: $HOME/lake)
  TENANTLAKE_AWS_CONN   the Airflow AWS connection of the central account (default: aws_default)
  TENANTLAKE_ROOT       the checkout holding dags/, sql/ and expectations/ (default: the one this
                        package was installed from in editable mode; the image sets /opt/tenantlake)
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

REPO = Path(os.environ.get("TENANTLAKE_ROOT") or Path(__file__).resolve().parents[2])


@dataclass(frozen=True)
class Settings:
    mode: str
    home: str
    landing: str
    lake: str
    aws_conn_id: str

    @classmethod
    def from_env(cls, landing_bucket: str | None = None) -> Settings:
        mode = os.environ.get("TENANTLAKE_MODE", "local")
        if mode not in ("local", "aws"):
            raise ValueError(f"TENANTLAKE_MODE={mode!r}: expected local or aws")
        home = os.environ.get("TENANTLAKE_HOME", str(REPO / ".demo"))
        default_landing = f"s3://{landing_bucket}/" if mode == "aws" and landing_bucket else f"{home}/landing"
        return cls(mode, home, os.environ.get("TENANTLAKE_LANDING", default_landing),
                   os.environ.get("TENANTLAKE_LAKE", f"{home}/lake"),
                   os.environ.get("TENANTLAKE_AWS_CONN", "aws_default"))

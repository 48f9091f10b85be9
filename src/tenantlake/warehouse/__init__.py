"""The warehouse: one interface (Warehouse), one algorithm (engine), two backends.

  catalogue  the tables of sql/, read from the metadata beside each table's SQL
  render     SQL through sqlglot: parsed, rewritten, written for each dialect
  security   roles, row-level security, grants and comments, generated from the catalogue
  engine     set-based load, incremental refresh, lifecycle; checks: post-load checks
  duckdb     the embedded default; redshift: production
  lake_source  what warehouse_load is handed from the lake (batches and current files)
  docs       the analysts' guide, generated from the catalogue
"""

from tenantlake.warehouse.interface import (
    BatchOutcome,
    LoadError,
    LoadReport,
    RefreshReport,
    TableRefresh,
    Warehouse,
)
from tenantlake.warehouse.render import sql_text

__all__ = ["BatchOutcome", "DuckDBWarehouse", "LoadError", "LoadReport", "RedshiftWarehouse", "RefreshReport",
           "TableRefresh", "Warehouse", "redshift_setup_script", "sql_text"]


def __getattr__(name: str):
    # the backends import their drivers (duckdb; redshift's SQL only): loaded when asked for
    if name == "DuckDBWarehouse":
        from tenantlake.warehouse.duckdb import DuckDBWarehouse

        return DuckDBWarehouse
    if name in ("RedshiftWarehouse", "redshift_setup_script"):
        from tenantlake.warehouse import redshift

        return getattr(redshift, name)
    raise AttributeError(name)

"""The lake: Apache Iceberg tables per zone and entity (tenantlake.lake.catalog), published by
Write-Audit-Publish (publish), read by snapshot (read), kept small and erasable (maintenance).
tenantlake.lake.hive is the former hive-partitioned layout, kept for the migration command."""

from __future__ import annotations

from tenantlake.lake.catalog import Lake, LakeConfig, open_catalog
from tenantlake.lake.hive import BatchKey, Commit, PartWriter, commits, parquet_bytes, publish, read_committed

__all__ = ["BatchKey", "Commit", "Lake", "LakeConfig", "PartWriter", "commits", "open_lake", "parquet_bytes",
           "publish", "read_committed"]


def open_lake(settings, aws=None) -> Lake:
    """The lake named by the settings. `aws` (tenantlake.connections' access to the central
    account) reaches S3 and Glue with the Airflow connection's endpoint, region and credentials."""
    io = aws.fileio_properties() if aws is not None and settings.lake.startswith("s3://") else {}
    glue = aws.client("glue") if settings.catalog == "glue" and aws is not None else None
    catalog = open_catalog(settings.catalog, uri=settings.catalog_uri, warehouse=settings.lake, glue_client=glue,
                           io_properties=io)
    return Lake(catalog, LakeConfig(settings.lake, settings.namespace))

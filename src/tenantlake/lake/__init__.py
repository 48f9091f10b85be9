"""The lake: published batches, and what readers are handed (tenantlake.lake.batches)."""

from tenantlake.lake.hive import BatchKey, Commit, PartWriter, commits, parquet_bytes, publish, read_committed

__all__ = ["BatchKey", "Commit", "PartWriter", "commits", "parquet_bytes", "publish", "read_committed"]

"""What the lake hands its readers: published batches and the files that hold them.

A batch is one (tenant, entity, export) as published; the warehouse loads each exactly once.
Files are named by absolute location (a local path or s3://bucket/key) so a reader needs no
knowledge of the lake's layout or table format.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LakeFile:
    path: str  # absolute: a local path, or s3://bucket/key
    rows: int
    bytes: int


@dataclass(frozen=True)
class LoadBatch:
    """One published batch of one tenant's entity, as the warehouse loads it: its protected files
    (tenantlake.privacy: no clear personal data), and how many rows they hold."""

    tenant_id: str
    entity: str
    export_id: str
    kind: str  # FULL_EXPORT | INCREMENTAL_EXPORT | STREAM_PIPES | STREAM_FIREHOSE
    rows: int
    files: tuple[LakeFile, ...]
    snapshot_id: int | None = None  # the lake snapshot that published it

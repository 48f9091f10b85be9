"""A staged lake part: min/max statistics where a reader can filter, none on `_extra` JSON text."""

from __future__ import annotations

import pyarrow.parquet as pq

from tenantlake.contracts import entity
from tenantlake.formats.dynamodb_json import Source, decode_precise
from tenantlake.lake.hive import PartWriter

LINE = (b'{"Item":{"id":{"S":"d-1"},"__typename":{"S":"Debt"},"createdAt":{"S":"2026-10-01T10:00:00.000Z"},'
        b'"updatedAt":{"S":"2026-10-02T10:00:00.000Z"},"_version":{"N":"2"},"_lastChangedAt":{"N":"1790000000000"},'
        b'"consumerId":{"S":"c-1"},"creditorName":{"S":"JPMCB CARD"},"accountType":{"S":"CREDIT_CARD"},'
        b'"balance":{"N":"1520.75"},"apr":{"N":"24.99"},"minimumPayment":{"N":"38.02"},"delinquencyDays":{"N":"30"},'
        b'"source":{"S":"TRANSUNION"},"tags":{"SS":["medical"]},"riskScore":{"N":"7"},'
        b'"bureau":{"M":{"name":{"S":"TRANSUNION"},"pulledAt":{"S":"2026-10-01T10:00:00.000Z"},'
        b'"tradeline":{"M":{"opened":{"S":"2019-04"},"highCredit":{"N":"2000"}}}}}}}\n')


def test_a_part_has_statistics_on_every_column_but_extra(tmp_path):
    rows = decode_precise(LINE, entity("Debt"), Source("agency-001", "e-1", "data/x.json.gz", "FULL_EXPORT", 0)).rows
    assert rows.column("_extra").to_pylist() == ['{"riskScore":{"N":"7"}}']
    writer = PartWriter(str(tmp_path / "part.parquet"), rows.schema)
    writer.write(rows)
    meta = pq.ParquetFile(writer.close()).metadata.row_group(0)
    stats = {meta.column(i).path_in_schema: meta.column(i).is_stats_set for i in range(meta.num_columns)}
    assert stats["_extra"] is False
    for path in ("tenant_id", "id", "_event_ts", "balance", "tags.list.element", "bureau.tradeline.highCredit"):
        assert stats[path] is True, path
    assert sum(stats.values()) == len(stats) - 1
    assert pq.read_table(tmp_path / "part.parquet").to_pylist() == rows.to_pylist()


def test_placing_a_part_asks_no_statistics_of_extra_and_logs_no_warning(tmp_path, lake, caplog):
    """pyiceberg warned "PyArrow statistics missing" for every part (an independent probe saw it on
    stderr): `_extra` has no statistics by design, so the lake asks for no metrics of it."""
    from tenantlake.lake.files import Placer

    rows = decode_precise(LINE, entity("Debt"), Source("agency-001", "e-1", "data/x.json.gz", "FULL_EXPORT", 0)).rows
    writer = PartWriter(str(tmp_path / "part.parquet"), rows.schema)
    writer.write(rows)
    table = lake.table("raw", "Debt")
    with caplog.at_level("WARNING"):
        placed = Placer(table).place(writer.close(), "agency-001", "e-1", "00000")
    assert [r.getMessage() for r in caplog.records if "statistics" in r.getMessage()] == []
    extra = table.schema().find_field("_extra").field_id
    assert extra not in placed.data_file.value_counts and extra in placed.data_file.column_sizes
    tenant = table.schema().find_field("tenant_id").field_id
    assert placed.data_file.lower_bounds[tenant] == b"agency-001"  # the columns readers prune on keep theirs

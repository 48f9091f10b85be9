"""`tenantlake` command line: the simulator, registry checks, and batch debugging tools.

A user mistake ends in one line naming the problem and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime

import orjson

from tenantlake.registry import RegistryError, load_registry


class UserError(Exception):
    """A mistake in what the user asked for; printed as one line, exit status 2."""


def _simulate(args) -> dict:
    from tenantlake_dev.simulate import FleetSpec, simulate_fleet

    registry = load_registry(args.registry)
    tenants = registry.enabled
    if args.agencies > len(tenants):
        raise UserError(f"--agencies {args.agencies}: the registry has only {len(tenants)} enabled "
                        "tenants (point --registry at a larger one)")
    try:
        spec = FleetSpec(
            consumers=args.consumers, days=args.days, warmup_days=args.warmup_days,
            window_hours=args.window_hours, seed=args.seed, streams=args.streams, defects=args.defects,
            full_export_at=datetime.fromisoformat(args.full_export_at).replace(tzinfo=UTC),
        )
    except ValueError as e:
        raise UserError(str(e)) from None
    landing = f"s3://{args.s3_bucket}/" if args.s3_bucket else None
    return simulate_fleet(tenants[: args.agencies], spec, args.out, landing, args.workers)


def _find_summaries(store) -> list[str]:
    """manifest-summary.json at the folder's root, or under AWSDynamoDB/<ExportId>/ (all of them,
    oldest export first: export ids start with the export time)."""
    if store.exists("manifest-summary.json"):
        return ["manifest-summary.json"]
    found = sorted(k for k in store.list("AWSDynamoDB") if k.endswith("/manifest-summary.json")
                   and k.count("/") == 2)
    if found:
        return found
    if store.exists("_started") or any(k.endswith("/_started") for k in store.list("AWSDynamoDB")):
        raise UserError("export not complete: only _started is present, no manifest-summary.json yet")
    raise UserError("no manifest-summary.json at the folder's root or under AWSDynamoDB/<ExportId>/")


def _convert(args) -> dict:
    from pathlib import Path

    from tenantlake.contracts import ENTITIES
    from tenantlake.formats.manifest import ExportError
    from tenantlake.ingest import ingest_export
    from tenantlake.storage import LocalStore

    if not Path(args.export_dir).is_dir():
        raise UserError(f"--export-dir {args.export_dir}: no such folder")
    registry = load_registry(args.registry)
    tenant = registry.by_id.get(args.tenant)
    if tenant is None:
        _say(f"note: tenant {args.tenant!r} is not in the registry; the export's account is not checked")
    if args.entity not in ENTITIES:
        _say(f"note: no contract for {args.entity!r}; rows keep the keys and the whole item as JSON")
    landing, lake = LocalStore(args.export_dir), LocalStore(args.out)
    results = []
    for key in _find_summaries(landing):
        try:
            r = ingest_export(landing, key, lake, tenant_id=args.tenant, entity=args.entity,
                              tenant=tenant, run_id="convert", workers=args.workers)
        except ExportError as e:
            raise UserError(str(e)) from None
        _say(r.line())
        results.append(r.__dict__)
    return {"out": str(Path(args.out).resolve()), "batches": results}


def _say(text: str) -> None:
    print(text, file=sys.stderr)


def _registry_check(args) -> dict:
    registry = load_registry(args.registry)
    return {"tenants": len(registry.tenants), "enabled": len(registry.enabled),
            "tables": sum(len(t.tables) for t in registry.enabled)}


UDF_MODULES = ("udf.py", "pseudonyms.py", "aws.py")  # what the f_pseudonym Lambda imports


def _package_udf(args) -> dict:
    """The f_pseudonym Lambda's deployment zip (handler tenantlake.udf.handler)."""
    import zipfile
    from pathlib import Path

    here = Path(__file__).parent
    try:
        with zipfile.ZipFile(args.out, "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr("tenantlake/__init__.py", "")  # a regular package: zipimport has no namespace ones
            for name in UDF_MODULES:
                z.write(here / name, f"tenantlake/{name}")
    except OSError as e:
        raise UserError(f"{args.out}: cannot write the zip ({e.strerror})") from None
    return {"zip": str(args.out), "handler": "tenantlake.udf.handler", "modules": list(UDF_MODULES)}


def _redshift_setup(args) -> None:
    """Print the SQL that prepares a new Redshift database (reviewed, then run by an admin)."""
    from tenantlake.warehouse import RedshiftWarehouse

    try:
        wh = RedshiftWarehouse(lambda: None, args.lake, args.copy_role)
        script = wh.setup_statements(args.glue_database, args.spectrum_role)
    except ValueError as e:
        raise UserError(str(e)) from None
    sys.stdout.write(";\n\n".join(script) + ";\n")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tenantlake", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("simulate", help="write a simulated fleet's DynamoDB exports and ground truth")
    s.add_argument("--out", required=True, help="folder for landing/ and truth/")
    s.add_argument("--registry", help="tenant registry YAML (default: the shipped one)")
    s.add_argument("--agencies", type=int, default=5)
    s.add_argument("--consumers", type=int, default=400, help="consumers per agency")
    s.add_argument("--days", type=int, default=3, help="days of incremental history")
    s.add_argument("--warmup-days", type=int, default=60)
    s.add_argument("--window-hours", type=float, default=24)
    s.add_argument("--full-export-at", default="2026-11-01T00:00:00")
    s.add_argument("--seed", type=int, default=7)
    s.add_argument("--streams", action="store_true", help="also write DynamoDB Streams records")
    s.add_argument("--defects", type=int, default=0, help="known-bad items per kind in each full export")
    s.add_argument("--s3-bucket", help="write the landing files to this S3 bucket instead")
    s.add_argument("--workers", type=int, help="processes (default: one per core, 1 for S3)")
    s.set_defaults(run=_simulate)

    c = sub.add_parser("convert", help="turn one landed export folder into raw/ and quarantine/ Parquet")
    c.add_argument("--export-dir", required=True, help="the export's files as AWS wrote them")
    c.add_argument("--tenant", required=True, help="the tenant id stamped on every row")
    c.add_argument("--entity", required=True, help="the entity (table) name, e.g. Debt")
    c.add_argument("--out", required=True, help="folder receiving raw/ and quarantine/")
    c.add_argument("--registry", help="tenant registry YAML (default: the shipped one)")
    c.add_argument("--workers", type=int, default=1, help="processes decoding data files")
    c.set_defaults(run=_convert)

    d = sub.add_parser("demo", help="simulate the demo fleet and run the DAGs with real Airflow")
    d.set_defaults(run=None)

    r = sub.add_parser("registry", help="validate the tenant registry")
    r.add_argument("--registry", help="tenant registry YAML (default: the shipped one)")
    r.set_defaults(run=_registry_check)

    u = sub.add_parser("package-udf", help="write the f_pseudonym Lambda UDF's deployment zip")
    u.add_argument("--out", default="f_pseudonym.zip")
    u.set_defaults(run=_package_udf)

    w = sub.add_parser("redshift-setup", help="print the SQL that prepares a new Redshift database")
    w.add_argument("--lake", required=True, help="s3://bucket/prefix of the lake")
    w.add_argument("--glue-database", default="tenantlake", help="Glue database behind the external schema lake")
    w.add_argument("--spectrum-role", required=True, help="IAM role ARN Spectrum reads the lake with")
    w.add_argument("--copy-role", required=True, help="IAM role ARN COPY loads with")
    w.set_defaults(run=_redshift_setup)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command == "demo":
        from tenantlake_dev.demo import run_demo

        return run_demo()
    try:
        result = args.run(args)
    except (UserError, RegistryError) as e:
        print(f"tenantlake {args.command}: {e}", file=sys.stderr)
        return 2
    if result is None:  # the command printed its own output
        return 0
    sys.stdout.write(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode() + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

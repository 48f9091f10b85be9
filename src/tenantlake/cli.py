"""`tenantlake` command line: batch debugging, the tenant lifecycle, lake upkeep, and the dev tools.

A user mistake ends in one line naming the problem and a non-zero exit, never a traceback.
The command line is the one place the runtime and the dev tools (simulate, demo) meet: those two
commands load tenantlake_dev when asked for, and only then.
"""

from __future__ import annotations

import argparse
import re
import sys
from datetime import UTC, datetime
from pathlib import Path

import orjson

from tenantlake.arguments import at_least, hours
from tenantlake.registry import TENANT_ID, RegistryError, load_registry
from tenantlake.settings import SettingsError


class UserError(Exception):
    """A mistake in what the user asked for; printed as one line, exit status 2."""


def _say(text: str) -> None:
    print(text, file=sys.stderr)


def _runtime():
    """The runtime the DAGs use, for commands acting on the configured lake and warehouse."""
    from tenantlake.connections import runtime

    return runtime()


# ---- dev tools ------------------------------------------------------------------------------------

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


# ---- one export, by hand ----------------------------------------------------------------------------

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


def local_lake(root: str | Path):
    """A lake of its own under `root`: Iceberg tables with a SQLite catalog beside them."""
    from tenantlake.lake import Lake, LakeConfig, open_catalog

    root = Path(root).resolve()
    catalog = open_catalog("sql", uri=f"sqlite:///{root}/_catalog/iceberg.db", warehouse=str(root))
    return Lake(catalog, LakeConfig(str(root)))


def _convert(args) -> dict:
    from tenantlake.contracts import ENTITIES
    from tenantlake.formats.manifest import ExportError
    from tenantlake.ingest import Ingest
    from tenantlake.pseudonyms import local_key
    from tenantlake.storage import LocalStore

    if not Path(args.export_dir).is_dir():
        raise UserError(f"--export-dir {args.export_dir}: no such folder")
    if not re.fullmatch(TENANT_ID, args.tenant):  # stamped on every row, and a path of the key file
        raise UserError("--tenant: not a tenant id (lower-case letters, digits and '-', as the registry's)")
    if not args.out.strip():
        raise UserError("--out: empty; name the folder that receives the lake")
    registry = load_registry(args.registry)
    tenant = registry.by_id.get(args.tenant)
    if tenant is None and args.tenant in registry.invalid_by_id:  # a typo there must not switch checks off
        registry.tenant(args.tenant)  # raises RegistryError naming the entry's problems
    if tenant is None:
        _say(f"note: tenant {args.tenant!r} is not in the registry; the export's account is not checked")
    if args.entity not in ENTITIES:
        if tenant is not None and args.entity not in tenant.tables:
            raise UserError(f"--entity {args.entity}: no contract, and {args.tenant}'s registry entry has no such "
                            f"table (its tables: {', '.join(sorted(tenant.tables))})")
        _say(f"note: no contract for {args.entity!r}; rows keep the keys and the whole item as JSON")
    root, only = Path(args.export_dir).resolve(), None
    if (root / "manifest-summary.json").exists() and root.parent.name == "AWSDynamoDB":
        # one export's own folder, as AWS wrote it: an incremental export keeps its data beside it,
        # in the shared AWSDynamoDB/data/, so the export's S3 prefix folder is read (this export only)
        only, root = f"AWSDynamoDB/{root.name}/manifest-summary.json", root.parent.parent
    landing, out = LocalStore(root), Path(args.out).resolve()
    lake = local_lake(out)
    results = []
    with Ingest(lake, args.entity, "convert", lambda t: local_key(out, t), workers=args.workers) as session:
        staged = []
        for key in [only] if only else _find_summaries(landing):
            try:
                staged.append(session.stage_export(landing, key, args.tenant, tenant))
            except ExportError as e:
                raise UserError(str(e)) from None
        for r in session.publish(staged)[0]:
            _say(r.line())
            results.append(r.__dict__)
    return {"out": str(out), "catalog": f"{out}/_catalog/iceberg.db",
            "tables": {zone: lake.identifier(zone, args.entity) for zone in ("raw", "quarantine", "protected")
                       if lake.exists(zone, args.entity)},
            "batches": results}


# ---- registry and onboarding -----------------------------------------------------------------------

def _registry_check(args) -> dict:
    registry = load_registry(args.registry)
    result = {"tenants": len(registry.tenants), "enabled": len(registry.enabled),
              "tables": sum(len(t.tables) for t in registry.enabled),
              "invalid": [e.message for e in registry.invalid]}
    if registry.invalid:
        for e in registry.invalid:
            _say(f"invalid: {e.message}")
        raise SystemExit(_print(result) or 2)
    return result


def _onboard(args) -> dict:
    from tenantlake.onboarding import check_tenant

    if not args.check:
        raise UserError("onboard: only --check is offered (onboarding itself is a registry entry; see README)")
    runtime = _runtime()
    checks = check_tenant(runtime, args.tenant)
    for c in checks:
        _say(f"[{'ok' if c.ok else 'FIX'}] {c.name}: {c.detail}")
    result = {"tenant_id": args.tenant, "ok": all(c.ok for c in checks),
              "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail} for c in checks]}
    if not result["ok"]:
        raise SystemExit(_print(result) or 1)
    return result


# ---- lifecycle ------------------------------------------------------------------------------------

def _erase(args) -> dict:
    from tenantlake.lifecycle import ErasureIncomplete, ErasureRefused, erase

    if not args.consumer.strip():
        raise UserError("--consumer: empty; an erasure names exactly one consumer (their id in the agency's table)")
    runtime = _runtime()
    if args.tenant in runtime.registry.invalid_by_id:
        runtime.registry.tenant(args.tenant)  # a RegistryError naming the entry and its fields
    if args.tenant not in runtime.registry.by_id:
        raise UserError(f"--tenant {args.tenant}: not a valid tenant of the registry")
    try:
        result = erase(runtime, args.tenant, args.consumer)
    except ErasureRefused as e:
        raise UserError(str(e)) from None
    except ErasureIncomplete as e:  # every other layer is erased: say what is left, and fail
        _print(e.result)
        _say(f"tenantlake erase: incomplete: {e}")
        raise SystemExit(1) from None
    if "warning" in result:
        _say(f"tenantlake erase: warning: {result['warning']}")
    return result


def _offboard(args) -> dict:
    from tenantlake.lifecycle import OffboardRefused, offboard

    if not args.yes:
        raise UserError(f"offboarding removes every trace of {args.tenant}, irreversibly: add --yes to proceed")
    try:
        return offboard(_runtime(), args.tenant)
    except OffboardRefused as e:
        raise UserError(f"--tenant {e}") from None


# ---- lake upkeep ----------------------------------------------------------------------------------

def _maintain(args) -> dict:
    from tenantlake.lake.upkeep import upkeep

    runtime = _runtime()
    retention = runtime.settings.snapshot_retention_hours if args.retention_hours is None else args.retention_hours
    return upkeep(runtime.lake, min_files=args.min_files, retention_hours=retention)  # 0 is a retention too


def _migrate(args) -> dict:
    from tenantlake.lake.migrate import migrate
    from tenantlake.storage import open_store

    if "://" not in args.source and not Path(args.source).is_dir():
        raise UserError(f"--from {args.source}: no such folder")
    runtime = _runtime()
    done = migrate(open_store(args.source), runtime.lake, runtime.key_for)
    if done.mismatches:
        raise UserError("the migrated lake differs from the former one: " + "; ".join(done.mismatches[:10]))
    return {"batches": done.batches, "already_there": done.replayed,
            "tables": {f"{t}/{e}": v for (t, e), v in sorted(done.per_table.items())}}


def _redshift_setup(args) -> None:
    """Print the SQL that prepares a new Redshift database (reviewed, then run by an admin)."""
    from tenantlake.warehouse import redshift_setup_script

    try:
        script = redshift_setup_script(args)
    except ValueError as e:
        raise UserError(str(e)) from None
    sys.stdout.write(script)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tenantlake", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("simulate", help="(dev) write a simulated fleet's DynamoDB exports and ground truth")
    s.add_argument("--out", required=True, help="folder for landing/ and truth/")
    s.add_argument("--registry", help="tenant registry YAML (default: the shipped one)")
    s.add_argument("--agencies", type=at_least(1), default=5)
    s.add_argument("--consumers", type=at_least(1), default=400, help="consumers per agency")
    s.add_argument("--days", type=at_least(0), default=3, help="days of incremental history")
    s.add_argument("--warmup-days", type=at_least(0), default=60)
    s.add_argument("--window-hours", type=hours(), default=24)
    s.add_argument("--full-export-at", default="2026-11-01T00:00:00")
    s.add_argument("--seed", type=int, default=7)
    s.add_argument("--streams", action="store_true", help="also write DynamoDB Streams records")
    s.add_argument("--defects", type=at_least(0), default=0, help="known-bad items per kind in each full export")
    s.add_argument("--s3-bucket", help="write the landing files to this S3 bucket instead")
    s.add_argument("--workers", type=at_least(1), help="processes (default: one per core, 1 for S3)")
    s.set_defaults(run=_simulate)

    c = sub.add_parser("convert", help="turn one landed export folder into a lake of its own (raw, quarantine, "
                                       "protected Iceberg tables)")
    c.add_argument("--export-dir", required=True, help="the export's files as AWS wrote them")
    c.add_argument("--tenant", required=True, help="the tenant id stamped on every row")
    c.add_argument("--entity", required=True, help="the entity (table) name, e.g. Debt")
    c.add_argument("--out", required=True, help="folder receiving the lake (Iceberg tables, SQLite catalog)")
    c.add_argument("--registry", help="tenant registry YAML (default: the shipped one)")
    c.add_argument("--workers", type=at_least(1), default=1, help="processes decoding data files")
    c.set_defaults(run=_convert)

    d = sub.add_parser("demo", help="(dev) simulate the demo fleet and run the DAGs with real Airflow")
    d.set_defaults(run=None)

    r = sub.add_parser("registry", help="validate the tenant registry (exit 2 when an entry is invalid)")
    r.add_argument("--registry", help="tenant registry YAML (default: the shipped one)")
    r.set_defaults(run=_registry_check)

    o = sub.add_parser("onboard", help="check a new tenant: registry entry, role and ExternalId, PITR, "
                                       "landing bucket, secrets")
    o.add_argument("--tenant", required=True)
    o.add_argument("--check", action="store_true", help="run the checks (exit 1 when any fails)")
    o.set_defaults(run=_onboard)

    e = sub.add_parser("erase", help="erase one consumer (the agency's own id) from every layer")
    e.add_argument("--tenant", required=True)
    e.add_argument("--consumer", required=True, help="the consumer's id in the agency's DynamoDB table")
    e.set_defaults(run=_erase)

    f = sub.add_parser("offboard", help="remove every trace of a tenant, and refuse it from then on")
    f.add_argument("--tenant", required=True)
    f.add_argument("--yes", action="store_true", help="confirm: this cannot be undone")
    f.set_defaults(run=_offboard)

    m = sub.add_parser("maintain", help="compact small files, expire old snapshots, remove orphan files")
    m.add_argument("--min-files", type=at_least(2), default=8,
                   help="compact partitions holding at least this many files")
    m.add_argument("--retention-hours", type=hours(), help="time-travel retention (default: the settings')")
    m.set_defaults(run=_maintain)

    g = sub.add_parser("migrate-lake", help="move a former hive-partitioned lake into the Iceberg tables")
    g.add_argument("--from", dest="source", required=True, help="the former lake: a folder or s3://bucket/prefix")
    g.set_defaults(run=_migrate)

    w = sub.add_parser("redshift-setup", help="print the SQL that prepares a new Redshift database")
    w.add_argument("--lake", required=True, help="s3://bucket/prefix of the lake")
    w.add_argument("--glue-database-prefix", default="tenantlake",
                   help="prefix of the lake's Glue databases (<prefix>_raw, <prefix>_protected)")
    w.add_argument("--spectrum-role", required=True, help="IAM role ARN Spectrum reads the lake with")
    w.add_argument("--copy-role", required=True, help="IAM role ARN COPY loads with")
    w.set_defaults(run=_redshift_setup)

    from tenantlake.ops.status import add_status_parser

    add_status_parser(sub)
    return p


def _print(result) -> None:
    sys.stdout.write(orjson.dumps(result, option=orjson.OPT_INDENT_2, default=str).decode() + "\n")


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command == "demo":
        from tenantlake_dev.demo import run_demo

        return run_demo()
    try:
        result = args.run(args)
    except (UserError, RegistryError, SettingsError) as e:
        print(f"tenantlake {args.command}: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # a path the user gave: unreadable, not a folder, not writable
        where = f"{e.filename}: " if e.filename else ""
        print(f"tenantlake {args.command}: {where}{e.strerror or e}", file=sys.stderr)
        return 2
    except SystemExit as e:
        return int(e.code or 0)
    if result is not None:  # None: the command printed its own output
        _print(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())

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
    from tenantlake.simulate import FleetSpec, simulate_fleet

    registry = load_registry(args.registry)
    tenants = registry.enabled
    if args.agencies > len(tenants):
        raise UserError(f"--agencies {args.agencies}: the registry has only {len(tenants)} enabled "
                        "tenants (point --registry at a larger one)")
    try:
        spec = FleetSpec(
            consumers=args.consumers, days=args.days, warmup_days=args.warmup_days,
            window_hours=args.window_hours, seed=args.seed, streams=args.streams,
            full_export_at=datetime.fromisoformat(args.full_export_at).replace(tzinfo=UTC),
        )
    except ValueError as e:
        raise UserError(str(e)) from None
    landing = f"s3://{args.s3_bucket}/" if args.s3_bucket else None
    return simulate_fleet(tenants[: args.agencies], spec, args.out, landing, args.workers)


def _registry_check(args) -> dict:
    registry = load_registry(args.registry)
    return {"tenants": len(registry.tenants), "enabled": len(registry.enabled),
            "tables": sum(len(t.tables) for t in registry.enabled)}


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
    s.add_argument("--s3-bucket", help="write the landing files to this S3 bucket instead")
    s.add_argument("--workers", type=int, help="processes (default: one per core, 1 for S3)")
    s.set_defaults(run=_simulate)

    r = sub.add_parser("registry", help="validate the tenant registry")
    r.add_argument("--registry", help="tenant registry YAML (default: the shipped one)")
    r.set_defaults(run=_registry_check)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        result = args.run(args)
    except (UserError, RegistryError) as e:
        print(f"tenantlake {args.command}: {e}", file=sys.stderr)
        return 2
    sys.stdout.write(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode() + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

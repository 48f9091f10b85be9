"""The double as an HTTP endpoint: moto's ThreadedMotoServer with the double's patches and its
/_double/ control path, for the services test, docker-compose and anything outside this process.

    python -m tenantlake_dev.aws_double serve --port 5000 [--seed | --simulate] [--seed-out seeded.json]

--seed creates the registry's accounts with empty tables; --simulate fills them with simulated
agencies' histories, each write at its time, then lets real time run on. --seed-out writes the
central account's credentials and the Airflow connection to use (with --public-url as its
endpoint when other containers reach the double by another name).
"""

from __future__ import annotations

import argparse
import json
import signal
import threading
import urllib.request
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta

from moto.moto_server.threaded_moto_server import ThreadedMotoServer
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server

from tenantlake_dev.aws_double.control import ExportDouble, middleware
from tenantlake_dev.aws_double.patches import patched
from tenantlake_dev.aws_double.state import STATE


def _fill(args, server: DoubleServer):
    from tenantlake.registry import load_registry
    from tenantlake_dev.aws_double.fleet import play_fleet
    from tenantlake_dev.aws_double.seed import seed

    registry = load_registry(args.registry)
    key = tuple(args.central_key) if args.central_key else None
    if not args.simulate:
        return seed(registry, endpoint_url=server.endpoint_url, central_key=key)
    from tenantlake_dev.simulate import FleetSpec

    day = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    at = datetime.fromisoformat(args.full_export_at) if args.full_export_at else day - timedelta(days=args.days + 1)
    spec = FleetSpec(consumers=args.consumers, days=args.days, warmup_days=args.warmup_days, full_export_at=at)
    control = server.control()
    played = play_fleet(registry, spec, control, server.endpoint_url, central_key=key)
    control.real_clock()
    return played.seeded


class QuietHandler(MotoRequestHandler):
    def log_request(self, *args, **kwargs) -> None:
        pass  # one line per request drowns a test's output; errors are still logged


class DoubleServer(ThreadedMotoServer):
    """ThreadedMotoServer (moto 5.2.5) serving the double; port 0 picks a free port."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, log_requests: bool = False):
        super().__init__(ip_address=host, port=port, verbose=False)
        self._patches = ExitStack()
        self._handler = MotoRequestHandler if log_requests else QuietHandler

    def _server_entry(self) -> None:
        # As moto's own, with the control path in front of moto's application.
        app = middleware(DomainDispatcherApplication(create_backend_app))
        self._server = make_server(self._ip_address, self._port, app, True, request_handler=self._handler)
        self._server_ready_event.set()
        self._server.serve_forever()

    def start(self) -> None:
        """A new server holds nothing, as a new AWS account would: moto's backends live in this
        process and outlive a server, so what an earlier one was given (a user, a table, an export)
        is cleared through moto's own reset endpoint, and so are the double's clock and rules."""
        STATE.reset()
        self._patches.enter_context(patched())
        super().start()
        urllib.request.urlopen(urllib.request.Request(f"{self.endpoint_url}/moto-api/reset", method="POST"),
                               timeout=30).close()

    def stop(self) -> None:
        try:
            super().stop()
        finally:
            self._patches.close()

    @property
    def endpoint_url(self) -> str:
        host, port = self.get_host_and_port()
        return f"http://{'127.0.0.1' if host in ('0.0.0.0', '') else host}:{port}"

    def control(self) -> ExportDouble:
        """The server shares this process's state: steer it directly."""
        return ExportDouble(self.endpoint_url)

    def __enter__(self) -> DoubleServer:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tenantlake_dev.aws_double",
                                     description="tenantlake's AWS export double (moto, extended)")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve the double over HTTP until interrupted")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=5000)
    serve.add_argument("--export-seconds", type=float, help="how long an export stays IN_PROGRESS")
    serve.add_argument("--seed", action="store_true",
                       help="create the registry's accounts: roles, empty tables, secrets, buckets")
    serve.add_argument("--simulate", action="store_true",
                       help="as --seed, with tables filled from simulated agencies, each write at its time")
    serve.add_argument("--consumers", type=int, default=200, help="--simulate: consumers per agency")
    serve.add_argument("--days", type=int, default=2, help="--simulate: days of changes after the full export")
    serve.add_argument("--warmup-days", type=int, default=30, help="--simulate: history before the full export")
    serve.add_argument("--full-export-at", help="--simulate: ISO time of the full export (default: days+1 ago)")
    serve.add_argument("--registry", help="tenant registry YAML (default: the shipped one)")
    serve.add_argument("--seed-out", help="write what was seeded (central credentials, endpoint) here as JSON")
    serve.add_argument("--public-url", help="the endpoint other hosts use (written to --seed-out)")
    serve.add_argument("--central-key", nargs=2, metavar=("KEY_ID", "SECRET"),
                       help="fixed credentials of the central account's user (for a connection written in advance)")
    serve.add_argument("--log-requests", action="store_true", help="log one line per request")
    args = parser.parse_args(argv)

    server = DoubleServer(args.host, args.port, log_requests=args.log_requests)
    server.start()
    if args.export_seconds is not None:
        STATE.timing.seconds = args.export_seconds
    if args.seed or args.simulate:
        seeded = _fill(args, server)
        if args.public_url:
            seeded.endpoint_url = args.public_url
        if args.seed_out:
            with open(args.seed_out, "w") as f:
                json.dump(seeded.as_json(), f, indent=2)
    print(f"export double at {server.endpoint_url}", flush=True)  # noqa: T201 - a command's one line
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    server.stop()
    return 0

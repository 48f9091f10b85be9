"""The double as an HTTP endpoint: moto's ThreadedMotoServer with the double's patches and its
/_double/ control path, for the services test, docker-compose and anything outside this process.

    python -m tenantlake_dev.aws_double serve --port 5000 [--seed] [--seed-out seeded.json]
"""

from __future__ import annotations

import argparse
import json
import signal
import threading
from contextlib import ExitStack

from moto.moto_server.threaded_moto_server import ThreadedMotoServer
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server

from tenantlake_dev.aws_double.control import ExportDouble, middleware
from tenantlake_dev.aws_double.patches import patched
from tenantlake_dev.aws_double.state import STATE


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
        self._patches.enter_context(patched())
        super().start()

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
    serve.add_argument("--registry", help="tenant registry YAML (default: the shipped one)")
    serve.add_argument("--seed-out", help="write what was seeded (central credentials, endpoint) here as JSON")
    serve.add_argument("--log-requests", action="store_true", help="log one line per request")
    args = parser.parse_args(argv)

    server = DoubleServer(args.host, args.port, log_requests=args.log_requests)
    server.start()
    if args.export_seconds is not None:
        STATE.timing.seconds = args.export_seconds
    if args.seed:
        from tenantlake.registry import load_registry
        from tenantlake_dev.aws_double.seed import seed

        seeded = seed(load_registry(args.registry), endpoint_url=server.endpoint_url)
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

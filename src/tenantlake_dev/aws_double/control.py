"""Steering the double: its clock, how long exports take, which exports fail or stall.

The same methods work in-process (ExportDouble) and against a server in another process
(RemoteDouble, over POST /_double/<command> with a JSON body): both end in `apply`.
"""

from __future__ import annotations

import json
import urllib.request
from dataclasses import asdict
from datetime import datetime, timedelta

from tenantlake_dev.aws_double import dynamodb
from tenantlake_dev.aws_double.state import STATE, Rule

PATH = "/_double/"


def apply(command: str, args: dict) -> dict:
    """Run one control command; the answer is JSON-able."""
    if command == "set_clock":
        STATE.clock.set(datetime.fromisoformat(args["at"]))
    elif command == "advance":
        STATE.clock.advance(float(args["seconds"]))
    elif command == "real_clock":
        STATE.clock.real()
    elif command == "configure":
        with STATE.lock:
            for name, value in args.items():
                if not hasattr(STATE.timing, name):
                    raise ValueError(f"unknown setting {name!r}; known: {', '.join(asdict(STATE.timing))}")
                setattr(STATE.timing, name, type(getattr(STATE.timing, name))(value))
    elif command == "fail_exports":
        with STATE.lock:
            STATE.rules.append(Rule(args.get("table"), args["code"], args.get("message", "")))
    elif command == "stall_exports":
        with STATE.lock:
            STATE.rules.append(Rule(args.get("table"), stall=True))
    elif command == "clear_rules":
        with STATE.lock:
            STATE.rules.clear()
    elif command == "finish_exports":
        pending = [e for e in dynamodb.all_exports() if e.status == "IN_PROGRESS"]
        for e in pending:
            dynamodb.settle(e, force=True)
        return {"finished": sum(e.status != "IN_PROGRESS" for e in pending)}
    elif command == "reset":
        STATE.reset()
    elif command != "state":
        raise ValueError(f"unknown command {command!r}")
    return STATE.describe()


class DoubleControl:
    """What a test can do to the double, wherever it runs."""

    def _call(self, command: str, **args) -> dict:
        raise NotImplementedError

    def state(self) -> dict:
        return self._call("state")

    def set_clock(self, at: datetime) -> None:
        """Fix AWS's time (item writes, PITR, export times) at `at`; it never goes back."""
        self._call("set_clock", at=at.isoformat())

    def advance(self, delta: timedelta | float) -> None:
        seconds = delta.total_seconds() if isinstance(delta, timedelta) else delta
        self._call("advance", seconds=seconds)

    def real_clock(self) -> None:
        self._call("real_clock")

    def configure(self, **timing) -> None:
        """seconds / describes (how long an export stays IN_PROGRESS), data_files (per full export)."""
        self._call("configure", **timing)

    def fail_exports(self, table: str | None, code: str, message: str = "") -> None:
        """Exports of `table` (name or ARN; None: all) requested from now on end FAILED."""
        self._call("fail_exports", table=table, code=code, message=message)

    def stall_exports(self, table: str | None) -> None:
        """Exports of `table` requested from now on stay IN_PROGRESS for ever."""
        self._call("stall_exports", table=table)

    def clear_rules(self) -> None:
        self._call("clear_rules")

    def finish_exports(self) -> int:
        """Finish every export that is still IN_PROGRESS (stalled ones excepted) now."""
        return self._call("finish_exports")["finished"]

    def reset(self) -> None:
        """The double's own state (clock, timing, rules); moto's resources are reset by moto."""
        self._call("reset")


class ExportDouble(DoubleControl):
    """The double in this process."""

    def __init__(self, endpoint_url: str | None = None):
        self.endpoint_url = endpoint_url

    @property
    def clock(self):
        return STATE.clock

    def _call(self, command: str, **args) -> dict:
        return apply(command, args)


class RemoteDouble(DoubleControl):
    """A double served by another process (`python -m tenantlake_dev.aws_double serve`)."""

    def __init__(self, endpoint_url: str):
        self.endpoint_url = endpoint_url.rstrip("/")

    def _call(self, command: str, **args) -> dict:
        request = urllib.request.Request(f"{self.endpoint_url}{PATH}{command}", data=json.dumps(args).encode(),
                                         headers={"Content-Type": "application/json"}, method="POST")
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - a local double
            return json.loads(response.read())


def middleware(app):
    """A WSGI wrapper answering /_double/<command> before moto sees the request."""

    def wrapped(environ, start_response):
        path = environ.get("PATH_INFO", "")
        if not path.startswith(PATH):
            return app(environ, start_response)
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
            args = json.loads(environ["wsgi.input"].read(length) or b"{}")
            status, body = "200 OK", apply(path[len(PATH):], args)
        except (ValueError, KeyError, TypeError) as e:
            status, body = "400 Bad Request", {"error": str(e)}
        payload = json.dumps(body).encode()
        start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))])
        return [payload]

    return wrapped

"""Run docker-compose's Airflow services as local processes, each in a stand-in for its container.

A container's file system is played by a folder per service: the Dockerfile's COPY lines and the
service's mounts become symlinks (bind mounts to the checkout, named volumes to one shared folder
per volume), and its own /opt/airflow is a folder of its own, as in a container. So each service
writes its own airflow.cfg, as each container does: a secret missing from the compose environment
breaks here the way it breaks in Docker. Paths in the environment and the command that name a
container path (/opt/...) are mapped into the service's folder.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from tests.services import compose as c

VENV_BIN = str(Path(sys.executable).parent)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _link(path: Path, target: Path) -> None:
    if path.is_symlink():
        path.unlink()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.symlink_to(target, target_is_directory=target.is_dir())


class Stack:
    def __init__(self, root: Path):
        self.root = root
        self.procs: dict[str, subprocess.Popen] = {}
        (root / "logs").mkdir(parents=True, exist_ok=True)

    def volume(self, name: str) -> Path:
        path = self.root / "volumes" / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def container(self, name: str, service: dict) -> Path:
        """The service's stand-in file system: the image's copies, then its mounts over them."""
        fs = self.root / "containers" / name
        for dest, source in c.image_copies().items():
            _link(fs / dest.lstrip("/"), c.REPO / source)
        for source, target, _mode in c.mounts(service):
            _link(fs / target.lstrip("/"), c.REPO / source if source.startswith("./") else self.volume(source))
        (fs / c.BASE_IMAGE_ENV["AIRFLOW_HOME"].lstrip("/")).mkdir(parents=True, exist_ok=True)
        return fs

    @staticmethod
    def in_container(fs: Path, value: str) -> str:
        return f"{fs}{value}" if value.startswith("/opt/") else value

    def process_env(self, fs: Path, env: dict[str, str], overrides: dict[str, str]) -> dict[str, str]:
        """The container's environment with its paths mapped, the host-specific overrides on top,
        and nothing of this test session's own Airflow, tenantlake or AWS settings."""
        base = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "TENANTLAKE", "AWS_", "_AIRFLOW"))}
        base["PATH"] = f"{VENV_BIN}:{base.get('PATH', '/usr/bin:/bin')}"  # airflow and python of the venv
        return base | {k: self.in_container(fs, v) for k, v in env.items()} | overrides

    def start(self, name: str, argv: list[str], env: dict[str, str], fs: Path) -> None:
        argv = [self.in_container(fs, a) for a in argv]
        log = open(self.root / "logs" / f"{name}.log", "ab")  # noqa: SIM115 - closed with the process
        self.procs[name] = subprocess.Popen(argv, env=env, cwd=fs, stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()

    def run(self, name: str, argv: list[str], env: dict[str, str], fs: Path, timeout: float) -> None:
        """A one-shot service, to completion (Compose's service_completed_successfully)."""
        self.start(name, argv, env, fs)
        try:
            code = self.procs[name].wait(timeout=timeout)
        except subprocess.TimeoutExpired as e:
            raise AssertionError(f"{name} did not finish in {timeout:.0f} s") from e
        assert code == 0, f"{name} exited with {code}"

    def check_running(self) -> None:
        for name, proc in self.procs.items():
            if name != "airflow-init" and proc.poll() is not None:
                raise AssertionError(f"service {name} exited with {proc.returncode}")

    def stop(self) -> None:
        """SIGTERM to each service's process group (they started sessions of their own), then
        SIGKILL to what is left after a grace period."""
        for proc in self.procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        for proc in self.procs.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        for proc in self.procs.values():
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # the group: task processes the service forked
            except ProcessLookupError:
                pass
            proc.wait(timeout=10)

    def dump(self, lines: int = 60) -> str:
        """The tail of every service's log and of every task log that reports an error."""
        out = []
        for log in sorted((self.root / "logs").glob("*.log")):
            text = log.read_text(errors="replace").splitlines()
            out.append(f"===== {log.stem} (last {lines} of {len(text)} lines) =====")
            out.extend(text[-lines:])
        task_logs = self.root / "volumes" / "airflow-logs"
        failed = [log for log in sorted(task_logs.rglob("*.log")) if task_logs.exists()
                  and '"level":"error"' in log.read_text(errors="replace")]
        for log in failed[:3]:
            out.append(f"===== task log {log.relative_to(task_logs)} ({len(failed)} task logs with errors) =====")
            out.extend(log.read_text(errors="replace").splitlines()[-lines // 4:])
        return "\n".join(out)

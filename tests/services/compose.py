"""docker-compose.yml, read the way Docker Compose and the image would read it, for tests that
cannot run Docker (no engine in CI): variable interpolation from .env, the image's ENV and COPY
lines, each service's environment, mounts and command as the apache/airflow entrypoint runs it.

Only the parts of the Compose specification this project uses are implemented; anything else in
the file makes these functions fail loudly rather than guess.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yml"
DOCKERFILE = REPO / "Dockerfile"
ENV_EXAMPLE = REPO / ".env.example"
INIT_ENV = REPO / "scripts" / "init-env"

# The Airflow components (one image, one environment); postgres, redis and aws-double are not.
AIRFLOW_SERVICES = ["airflow-init", "api-server", "scheduler", "dag-processor", "triggerer", "worker"]
# Set by the apache/airflow base image, not by our Dockerfile.
BASE_IMAGE_ENV = {"AIRFLOW_HOME": "/opt/airflow"}

# ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?error}, ${NAME?error}; $$ is a literal $.
_VAR = re.compile(r"\$\$|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:-|-|:\?|\?)(?P<arg>[^}]*))?\}|\$(?P<bare>[A-Za-z_][A-Za-z0-9_]*)")


class MissingVariable(ValueError):
    """What `docker compose` reports for ${NAME:?message} when NAME is unset or empty."""


def load() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def variables(text: str) -> dict[str, list[tuple[str | None, str | None]]]:
    """Every variable the text interpolates, with each (operator, argument) it is used with."""
    found: dict[str, list] = {}
    for m in _VAR.finditer(text):
        if m.group(0) == "$$":
            continue
        name = m.group("name") or m.group("bare")
        found.setdefault(name, []).append((m.group("op"), m.group("arg")))
    return found


def interpolate(value, env: dict[str, str]):
    """Compose's interpolation of one value (strings inside lists and mappings too)."""
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def one(m: re.Match) -> str:
        if m.group(0) == "$$":
            return "$"
        name = m.group("name") or m.group("bare")
        op, arg, current = m.group("op"), m.group("arg"), env.get(name)
        if op == ":-":
            return current if current else arg
        if op == "-":
            return arg if current is None else current
        if op in (":?", "?") and (current is None or (op == ":?" and current == "")):
            raise MissingVariable(f"required variable {name} is missing a value: {arg}")
        return current or ""

    return _VAR.sub(one, value)


def read_dotenv(path: Path) -> dict[str, str]:
    """KEY=VALUE lines as Compose reads .env: comments and blank lines skipped, quotes removed."""
    values = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        assert sep, f"{path}: not KEY=VALUE: {line!r}"
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def documented(path: Path = ENV_EXAMPLE) -> dict[str, list[str]]:
    """Every KEY=VALUE line of .env.example, commented out or not: the values it shows per key."""
    shown: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        m = re.match(r"#?([A-Z][A-Z0-9_]*)=(.*)$", line.strip())
        if m:
            shown.setdefault(m.group(1), []).append(m.group(2).strip().strip("'\""))
    return shown


def dockerfile_lines() -> list[str]:
    """The Dockerfile's instructions, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    return [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]


def image_env() -> dict[str, str]:
    """The environment a container of the image starts with: the base image's, then our ENV lines."""
    env = dict(BASE_IMAGE_ENV)
    for line in dockerfile_lines():
        if line.startswith("ENV "):
            for pair in shlex.split(line[4:]):
                key, sep, value = pair.partition("=")
                assert sep, f"Dockerfile: ENV {pair!r} is not KEY=VALUE"
                env[key] = value
    return env


def image_copies() -> dict[str, str]:
    """Folders the Dockerfile copies from the checkout into the image: container path -> repo path."""
    copies = {}
    for line in dockerfile_lines():
        if line.startswith("COPY "):
            args = [a for a in shlex.split(line[5:]) if not a.startswith("--")]
            *sources, dest = args
            if len(sources) == 1 and (REPO / sources[0]).is_dir():
                copies[dest.rstrip("/")] = sources[0]
    return copies


def service_env(service: dict, dotenv: dict[str, str]) -> dict[str, str]:
    """A container's environment: the image's, then the service's, interpolated from .env."""
    env = image_env()
    environment = service.get("environment") or {}
    assert isinstance(environment, dict), "environment: use the mapping form"
    env.update({k: "" if v is None else str(v) for k, v in interpolate(environment, dotenv).items()})
    return env


def mounts(service: dict) -> list[tuple[str, str, str]]:
    """(source, container path, mode) of each volume; a source starting with ./ is a repo path,
    any other a named volume."""
    out = []
    for spec in service.get("volumes") or []:
        assert isinstance(spec, str), "volumes: use the short form"
        source, target, *mode = spec.split(":")
        out.append((source, target, mode[0] if mode else "rw"))
    return out


def entrypoint_argv(service: dict) -> list[str]:
    """What the apache/airflow image's entrypoint runs for the service's command: bash and python
    commands as they are, anything else as arguments of `airflow`."""
    command = service["command"]
    argv = shlex.split(command) if isinstance(command, str) else list(command)
    return argv if argv[0] in ("bash", "python") else ["airflow", *argv]

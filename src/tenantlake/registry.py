"""The tenant registry: which agencies exist, where their data lives, and how to reach it.

A versioned YAML file, validated by the models below. It holds references to secrets (an SSM
parameter or a Secrets Manager secret), never the secrets themselves.

One bad entry never stops the other tenants: `load_registry` keeps every valid entry in
`Registry.tenants` and lists the others in `Registry.invalid`, each with a message naming the
entry (position and tenant id) and the field, because a typo here would otherwise surface as a
confusing AWS error in one tenant's task hours later. Asking for an invalid tenant
(`Registry.tenant`) raises that message, so only that tenant's tasks fail. That holds for an
entry whose own text is not YAML (a tab, one space too many, an unclosed quote): the file is then
read entry by entry (`_entries_one_by_one`), and the broken entry fails with PyYAML's problem and
line. An entry holding two tenants' fields (a lost `-`) fails both by name, and is never taken as
switched off. A problem with the file itself (unreadable, not YAML outside the entries, no tenants list,
an unknown version, a bad landing bucket or account) still raises RegistryError naming the file:
no entry can be trusted then.

Duplicates: when two entries claim one tenant_id, or one aws_account_id, every entry involved is
invalid, not only the later one. Nothing in the file says which is right, and position is no
guide (entries are inserted anywhere): running the "first" could pull one agency's account under
another agency's id, a cross-tenant leak, while failing both is loud and fixed in one edit.

Freshness objectives: an entry may tighten or loosen how fresh one of its tables must be
(`freshness: {Debt: 26h}`): how old its watermark may grow before the table counts as late. The
defaults per entity live in config/freshness.yaml (tenantlake.ops.config); an override names a
table the entry has and is longer than the entry's export window, since an objective shorter than
the window would be missed after every window by construction.

Every task reads the registry, so a parsed registry is kept per file in the process, until the
file's modification time, size or inode changes; treat it as read-only.
"""

from __future__ import annotations

import difflib
import os
import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import timedelta
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from tenantlake.contracts import ENTITIES
from tenantlake.settings import REPO

# Where the shipped registry lives: <repo>/dags/registry/tenants.yaml (tenantlake.settings.REPO).
# TENANTLAKE_REGISTRY points elsewhere (a test fleet, a production registry).
DEFAULT_PATH = REPO / "dags" / "registry" / "tenants.yaml"

SecretRef = Annotated[
    str,
    Field(
        pattern=r"^(ssm:/[A-Za-z0-9_./-]+|secretsmanager:[A-Za-z0-9/_+=.@-]+)$",
        description="ssm:/parameter/name or secretsmanager:secret-id; the value is resolved at run time",
    ),
]


class RegistryError(ValueError):
    """The registry file is unreadable or invalid, or a tenant's entry is; the message names the
    file, and for an entry its position, tenant id and field."""


DUPLICATE_KEY = "duplicate key"  # how a key written twice in a mapping is marked (_UniqueKeys)
# `enabled:` values that mean off, as pydantic reads a valid entry's (an invalid one is read by hand)
SWITCHED_OFF = ("false", "no", "off", "0", "f", "n")
TENANT_ID = r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])$"  # a DNS-like label: no '-' at either end


def parse_window(text: str) -> timedelta:
    m = re.fullmatch(r"(\d+)\s*(m|h)", text.strip())
    if not m:
        raise ValueError("not a window like '15m' or '1h'")  # the value is not told: it may be a secret
    n, unit = int(m.group(1)), m.group(2)
    return timedelta(minutes=n) if unit == "m" else timedelta(hours=n)


_DURATION_UNITS = {"m": "minutes", "h": "hours", "d": "days"}


def parse_duration(text: str) -> timedelta:
    """A freshness objective: '90m', '26h', '2d', or several parts ('1d 2h')."""
    parts = re.findall(r"(\d+)\s*([mhd])", text) if isinstance(text, str) else []
    if not parts or re.sub(r"(\d+)\s*([mhd])|\s+", "", text):
        raise ValueError("not a duration like '90m', '26h' or '2d'")  # the value is not told (see unknown_names)
    return sum((timedelta(**{_DURATION_UNITS[u]: int(n)}) for n, u in parts), timedelta())


# An objective under 15 minutes is finer than DynamoDB's smallest export window; one over 30 days
# is no objective (point-in-time recovery, which exports read from, keeps 35 days).
FRESHNESS_RANGE = (timedelta(minutes=15), timedelta(days=30))


class Tenant(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    tenant_id: str = Field(pattern=TENANT_ID)
    display_name: str = Field(min_length=1, pattern=r"\S")  # not blank
    aws_account_id: str = Field(pattern=r"^\d{12}$")
    region: str = Field(pattern=r"^[a-z]{2}(-gov)?-[a-z]+-\d$")
    role_arn: str = Field(pattern=r"^arn:aws[a-z-]*:iam::\d{12}:role/[A-Za-z0-9+=,.@_/-]{1,512}$")
    external_id_ref: SecretRef
    pseudonym_key_ref: SecretRef
    # DynamoDB table name per entity (Amplify names them <Model>-<apiId>-<env>).
    tables: dict[str, Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{3,255}$")]]
    export_window: str = "1h"  # schedule hint: the incremental window to ask for
    # where changes come from after the first full export: incremental exports, or DynamoDB
    # Streams records landed in S3 by Firehose or EventBridge Pipes
    change_source: Literal["exports", "streams"] = "exports"
    enabled: bool = True
    # per-table freshness objectives overriding config/freshness.yaml's (see the module doc)
    freshness: dict[str, str] = Field(default_factory=dict)

    @field_validator("tables")
    @classmethod
    def _known_entities(cls, tables: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(tables) - set(ENTITIES))
        if unknown:
            raise ValueError(f"{unknown_names(unknown)}; known: {', '.join(ENTITIES)}")
        if not tables:
            raise ValueError("at least one table is needed")
        return tables

    @field_validator("export_window")
    @classmethod
    def _window_in_dynamodb_range(cls, text: str) -> str:
        window = parse_window(text)
        if not timedelta(minutes=15) <= window <= timedelta(hours=24):
            raise ValueError(f"{text!r} is outside DynamoDB's incremental range of 15m to 24h")
        return text

    @field_validator("freshness")
    @classmethod
    def _freshness_objectives(cls, objectives: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        # tables and export_window are declared before freshness, so they are in info.data when valid
        tables, window = info.data.get("tables"), info.data.get("export_window")
        problems = []
        for entity, text in objectives.items():
            if tables is not None and entity not in tables:
                problems.append((f"{entity}: " if entity in ENTITIES else f"{unknown_names([entity])}: ")
                                + f"not one of this tenant's tables ({', '.join(tables)})")
                continue
            try:
                objective = parse_duration(text)
            except ValueError as e:
                problems.append(f"{entity}: {e}")
                continue
            low, high = FRESHNESS_RANGE
            if not low <= objective <= high:
                problems.append(f"{entity}: {text!r} is outside {low} .. {high.days} days")
            elif window is not None and objective <= parse_window(window):
                problems.append(f"{entity}: {text!r} is not longer than the export window {window}, "
                                "so every window would miss it")
        if problems:
            raise ValueError("; ".join(problems))
        return objectives

    def freshness_objective(self, entity: str) -> timedelta | None:
        """This tenant's own objective for the table, or None (the entity's default applies)."""
        text = self.freshness.get(entity)
        return parse_duration(text) if text is not None else None

    @field_validator("role_arn")
    @classmethod
    def _role_in_tenant_account(cls, arn: str, info: ValidationInfo) -> str:
        # A field validator (not a model one) so the error names role_arn; aws_account_id is
        # declared first, so it is in info.data when it is valid itself.
        account = info.data.get("aws_account_id")
        role_account = arn.split(":")[4]
        if account is not None and role_account != account:
            raise ValueError(f"role_arn is in account {role_account}, not the tenant's {account}")
        return arn

    def table_arn(self, entity: str) -> str:
        return f"arn:aws:dynamodb:{self.region}:{self.aws_account_id}:table/{self.tables[entity]}"


@dataclass(frozen=True)
class InvalidEntry:
    """A registry entry that failed validation. It holds no field values (a secret pasted where
    a reference belongs must not reach a log), only what planning and error messages need."""

    index: int  # position in the file's tenants list, from 0
    tenant_id: str | None  # the entry's tenant_id when it is a well-formed id, else None
    fields: tuple[str, ...]  # the fields at fault, e.g. ("aws_account_id", "tables.Debt"); "" = the entry itself
    message: str  # "tenants[2] (agency-003).aws_account_id: <why>[; ...]"
    entities: tuple[str, ...] = ()  # the known entities its tables name (to plan its failing tasks)
    enabled: bool = True  # False only when the entry itself says enabled: false


class _Document(BaseModel):
    """The file-level fields: any problem here invalidates the whole file."""

    model_config = ConfigDict(extra="forbid")

    version: int = Field(ge=1, le=1)
    landing_bucket: str = Field(pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
    # the central account owning the landing bucket (ExportTableToPointInTime's S3BucketOwner)
    landing_account_id: str = Field(default="200000000000", pattern=r"^\d{12}$")
    tenants: list[Any]


class Registry(BaseModel):
    """The valid tenants of one registry file, and the entries that were not."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: int = Field(ge=1, le=1)
    landing_bucket: str = Field(pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
    landing_account_id: str = Field(default="200000000000", pattern=r"^\d{12}$")
    tenants: list[Tenant]
    invalid: list[InvalidEntry] = Field(default_factory=list)
    source: str | None = None  # the file it was read from, for error messages

    @cached_property
    def by_id(self) -> dict[str, Tenant]:
        return {t.tenant_id: t for t in self.tenants}

    @cached_property
    def invalid_by_id(self) -> dict[str, list[InvalidEntry]]:
        out: dict[str, list[InvalidEntry]] = defaultdict(list)
        for entry in self.invalid:
            if entry.tenant_id:
                out[entry.tenant_id].append(entry)
        return dict(out)

    def tenant(self, tenant_id: str) -> Tenant:
        """The tenant's entry; RegistryError if it is not in the registry, or if its entry is
        invalid (with that entry's message: the tenant's tasks fail with it, no other's do)."""
        found = self.by_id.get(tenant_id)
        if found is not None:
            return found
        where = f"{self.source}: " if self.source else ""
        if tenant_id in self.invalid_by_id:
            problems = "; ".join(e.message for e in self.invalid_by_id[tenant_id])
            raise RegistryError(f"{where}tenant {tenant_id!r} has an invalid registry entry: {problems}")
        raise RegistryError(f"{where}tenant {tenant_id!r} is not in the registry")

    @property
    def enabled(self) -> list[Tenant]:
        return [t for t in self.tenants if t.enabled]


def _field(loc: tuple) -> str:
    return ".".join(str(p) for p in loc)


def _problem(loc: tuple, msg: str) -> tuple[str, str]:
    return _field(loc), msg.removeprefix("Value error, ")


def _entry_label(index: int, entry: Any) -> str:
    tid = entry.get("tenant_id") if isinstance(entry, dict) else None
    return f"tenants[{index}] ({tid if isinstance(tid, str) and re.fullmatch(TENANT_ID, tid) else '?'})"


def unknown_names(names: list[str]) -> str:
    """Keys that name no entity, told without echoing them: a value pasted one line off (a secret
    under `tables:`) must not reach a log. What helps fix a typo is the entity each is close to."""
    hints = []
    for name in names:
        close = [e for e in ENTITIES if e.lower() == str(name).lower()] or \
            difflib.get_close_matches(str(name), list(ENTITIES), n=1, cutoff=0.6)
        hints.append(f"one close to {close[0]}" if close else "one like no entity")
    return (f"{len(names)} unknown entit{'y' if len(names) == 1 else 'ies'} ({', '.join(hints)}; "
            "names not shown, as one could be a secret pasted in the wrong place)")


def _named(entry: dict, key: str) -> list[Any]:
    """Every value an entry holds for `key`, in file order: a key written twice keeps the one it
    replaced under _UniqueKeys' marker (two entries run together hold two tenant_ids)."""
    return [v for k, v in entry.items() if str(k).startswith(f"{DUPLICATE_KEY} {key} ")] + [entry.get(key)]


def _tenant_ids(values: list[Any]) -> list[str | None]:
    """The well-formed tenant ids among an invalid entry's values, once each, in file order; [None]
    when there is none (the entry fails as tenants[i])."""
    return list(dict.fromkeys(t for t in values if isinstance(t, str) and re.fullmatch(TENANT_ID, t))) or [None]


def _claims(entries: list[Any], key: str) -> dict[str, list[int]]:
    """Which positions claim each value of `key` (compared as text: YAML may read an unquoted
    account id as a number)."""
    out: dict[str, list[int]] = defaultdict(list)
    for i, entry in enumerate(entries):
        values = entry.claimed(key) if isinstance(entry, _Unreadable) else \
            _named(entry, key) if isinstance(entry, dict) else []
        for value in dict.fromkeys(v for v in values if isinstance(v, (str, int)) and not isinstance(v, bool)):
            if str(value):
                out[str(value)].append(i)
    return out


def _duplicates(entries: list[Any]) -> dict[int, list[tuple[str, str]]]:
    """Every entry sharing a tenant_id or an aws_account_id with another (see the module doc)."""
    out: dict[int, list[tuple[str, str]]] = defaultdict(list)
    for key in ("tenant_id", "aws_account_id"):
        for value, positions in _claims(entries, key).items():
            if len(positions) < 2:
                continue
            for i in positions:
                others = ", ".join(f"tenants[{j}]" for j in positions if j != i)
                out[i].append((key, f"duplicate {key} {value!r}, also at {others}"))
    return out


def _validate_entries(entries: list[Any]) -> tuple[list[Tenant], list[InvalidEntry]]:
    valid, invalid = [], []
    duplicates = _duplicates(entries)
    for i, entry in enumerate(entries):
        problems: list[tuple[str, str]] = []
        tenant = None
        if isinstance(entry, _Unreadable):
            invalid += entry.invalid_entries(i, duplicates.get(i, []))
            continue
        if not isinstance(entry, dict):
            problems.append(("", f"expected a mapping of fields, got {type(entry).__name__}"))
        else:
            try:
                tenant = Tenant.model_validate(entry)
            except ValidationError as e:
                problems += [_problem(err["loc"], err["msg"]) for err in e.errors()]
        problems += duplicates.get(i, [])
        if not problems:
            valid.append(tenant)
            continue
        label = _entry_label(i, entry)
        raw = entry if isinstance(entry, dict) else {}
        tables = raw.get("tables")
        # every tenant the entry names: a tenant_id written twice (two entries run together) names two
        ids = _tenant_ids(_named(raw, "tenant_id"))
        invalid += [InvalidEntry(
            index=i,
            tenant_id=tid,
            fields=tuple(dict.fromkeys(field for field, _ in problems)),
            message="; ".join(f"{label}{'.' if field else ''}{field}: {msg}" for field, msg in problems),
            entities=tuple(e for e in tables if e in ENTITIES) if isinstance(tables, dict) else (),
            # as pydantic reads the valid ones: "false", "no", "off", 0 are False too; but an
            # `enabled: false` among two tenants' fields may be either's: neither stops unseen
            enabled=len(ids) > 1 or str(raw.get("enabled", True)).strip().lower() not in SWITCHED_OFF,
        ) for tid in ids]
    return valid, invalid


# The C loader when libyaml is there: about 3.5x faster than the pure-Python one on this file.
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _UniqueKeys(_SAFE_LOADER):
    """A safe loader where a repeated key does not silently replace the first (YAML keeps the last):
    a merge conflict's second `tenants:` dropped every tenant above it, a second `tenant_id` in an
    entry renamed it. The mapping gains a key naming the repeat, which the models refuse where it
    stands: that one entry, or the file when it is a top-level key."""

    def construct_mapping(self, node, deep=False):
        # the mapping's own keys: a merge (`<<: *base`) brings keys its own may override, by design
        own = [k for k, _ in node.value if k.tag != "tag:yaml.org,2002:merge"]
        values = {id(k): v for k, v in node.value}
        mapping = super().construct_mapping(node, deep=deep)
        seen = {}
        for key_node in own:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:  # with the value it replaced: a first tenant_id names a tenant that must not vanish
                mapping[f"{DUPLICATE_KEY} {key} at line {key_node.start_mark.line + 1}"] = \
                    self.construct_object(values[id(seen[key])], deep=True)
            seen[key] = key_node
        return mapping


_LOADER = _UniqueKeys
_CACHE: dict[str, tuple[tuple[int, int, int], Registry]] = {}
_CACHE_SIZE = 16  # files; a process reads one registry, tests read many small ones


@dataclass(frozen=True)
class _Unreadable:
    """An entry of the tenants list whose own text is not YAML (a bad indent, a tab, an unclosed
    quote). Its fields are unknown, so what planning needs is read off its lines: every tenant id
    and account it names (should two entries' texts run together, both tenants fail loudly rather
    than one vanish), the entities it lists, and `enabled`."""

    text: str
    problem: str

    @cached_property
    def uncommented(self) -> str:  # a commented-out entry names no tenant
        return re.sub(r"(?:^|[ \t])#.*", "", self.text, flags=re.M)

    def claimed(self, key: str) -> list[str]:
        """Every value written for `key`, however it is spelled (`key:`, `key :`, `"key":`, `{key: `)."""
        return re.findall(rf"""(?:^|[\s{{,-])["']?{key}["']?[ \t]*:[ \t]*["']?([^\s"',}}]+)""", self.uncommented, re.M)

    def invalid_entries(self, index: int, duplicates: list[tuple[str, str]]) -> list[InvalidEntry]:
        ids = _tenant_ids(self.claimed("tenant_id"))
        entities = tuple(dict.fromkeys(e for e in re.findall(r"(?<![\w-])(\w+)[ \t]*:", self.uncommented)
                                       if e in ENTITIES))
        off = [v.lower() in SWITCHED_OFF for v in self.claimed("enabled")]
        # switched off only when the text is one entry's and says so: a merged text's `enabled:
        # false` may be the other tenant's, and an intact tenant must never stop without a word
        enabled = len(ids) > 1 or not (off and all(off))
        problems = "; ".join([f"not valid YAML: {self.problem}"] + [msg for _, msg in duplicates])
        return [InvalidEntry(index=index, tenant_id=tid, fields=("",), entities=entities, enabled=enabled,
                             message=f"tenants[{index}] ({tid or '?'}): {problems}") for tid in ids]


def _yaml_problem(e: yaml.YAMLError, text: str, first_line: int = 0) -> str:
    """PyYAML's problem and where, never its quoted source (the pure-Python loader quotes the
    line, which may hold a secret pasted in the wrong place). An unclosed quote is placed where
    it opens: its problem is found only at the end of the text."""
    if isinstance(e, yaml.reader.ReaderError):  # a character YAML refuses, told at its line
        line, column = text.count("\n", 0, e.position), e.position - text.rfind("\n", 0, e.position)
        code = e.character if isinstance(e.character, int) else ord(e.character)
        return f"{e.reason} (U+{code:04X}) at line {first_line + line + 1}, column {column}"
    problem = getattr(e, "problem", None) or "cannot be read"
    mark = getattr(e, "problem_mark", None)
    context = getattr(e, "context", None) or ""
    if "quoted scalar" in context or "flow" in context:
        mark = getattr(e, "context_mark", None) or mark
        problem = f"{context}, {problem}"
    return f"{problem} at line {first_line + mark.line + 1}, column {mark.column + 1}" if mark else problem


_TOP_KEY = re.compile(r"^[^\s#-]")  # a line starting a top-level key
_SEPARATOR = re.compile(r"^(?:---|\.\.\.)(?:\s|$)", re.M)  # a YAML document's start or end
_ENTRY_START = re.compile(r"^([ \t]*)-(?!-)")  # `- ` opening a list item (or `-x`, its space forgotten)


def _entries_one_by_one(text: str, source: str, error: yaml.YAMLError) -> Any:
    """The document of a registry that is not YAML as a whole, read with each entry of `tenants`
    on its own: one entry's syntax error (the commonest edit mistake) becomes that entry's
    problem instead of the whole file's. Only the block list under a `tenants:` line is split; a
    problem anywhere else is the file's, raised as the original error."""
    unusable = RegistryError(f"{source}: not valid YAML: {_yaml_problem(error, text)}")
    lines = re.split(r"(?<=\n)", text)  # YAML's line breaks only (splitlines also breaks at a form feed)
    starts = [i for i, line in enumerate(lines) if re.match(r"^tenants:\s*(#.*)?$", line)]
    if len(starts) != 1 or _SEPARATOR.search("".join(lines[starts[0]:])):  # one document, one list
        raise unusable
    first = starts[0] + 1
    end = next((i for i in range(first, len(lines)) if _TOP_KEY.match(lines[i])), len(lines))
    opening = [(i, len(m[1])) for i in range(first, end) if (m := _ENTRY_START.match(lines[i]))]
    if not opening:
        raise unusable
    # An entry starts at a `-` no deeper than one column past the first entry's: one space too
    # many or too few, or a tab, on an entry's first line then costs that entry alone (its fields
    # no longer line up with it), not the entry above it too. No registry field is a list.
    heads = [i for i, indent in opening if indent <= opening[0][1] + 1]
    if any(line.strip() and not line.lstrip().startswith("#") for line in lines[first:heads[0]]):
        raise unusable
    try:  # the entries' lines left blank: a problem in the rest is told at its own line
        doc = yaml.load("".join(lines[:first - 1] + ["tenants: []\n"] + ["\n"] * (end - first) + lines[end:]),
                        Loader=_LOADER)
    except yaml.YAMLError:
        raise unusable from None
    if not isinstance(doc, dict):
        raise unusable
    doc["tenants"] = []
    anchors = ""  # entries defining anchors, read before an entry naming an alias (YAML reads them so)
    for head, stop in zip(heads, heads[1:] + [end], strict=True):
        chunk = "".join(lines[head:stop])
        before = anchors if re.search(r"\*\S", chunk) else ""
        try:
            entry = yaml.load(before + chunk, Loader=_LOADER)
            if not isinstance(entry, list) or not entry:
                raise yaml.YAMLError("not a list entry")
            doc["tenants"].append(entry[-1])
            if re.search(r"&\S", chunk):
                anchors += chunk
        except yaml.YAMLError as e:
            doc["tenants"].append(_Unreadable(chunk, _yaml_problem(e, before + chunk, head - before.count("\n"))))
    return doc


def parse_registry(text: str, source: str = "<registry>") -> Registry:
    """Validate a registry's text: a Registry with the valid tenants and the invalid entries;
    RegistryError naming `source` when the file as a whole is unusable."""
    try:
        raw = yaml.load(text, Loader=_LOADER)  # a safe loader either way: no arbitrary objects
    except yaml.YAMLError as e:
        raw = _entries_one_by_one(text, source, e)
    if not isinstance(raw, dict):
        raise RegistryError(f"{source}: expected a mapping with version, landing_bucket and tenants")
    try:
        doc = _Document.model_validate(raw)
    except ValidationError as e:
        problems = "; ".join(f"{_field(err['loc'])}: {err['msg']}" for err in e.errors())
        raise RegistryError(f"{source}: {problems}") from None
    valid, invalid = _validate_entries(doc.tenants)
    # the parts were validated above: construct without validating every tenant a second time
    return Registry.model_construct(version=doc.version, landing_bucket=doc.landing_bucket,
                                    landing_account_id=doc.landing_account_id, tenants=valid,
                                    invalid=invalid, source=source)


def load_registry(path: str | os.PathLike | None = None) -> Registry:
    """Read and validate a registry (the shipped one, or TENANTLAKE_REGISTRY's): every valid
    entry in `tenants`, the others in `invalid`. RegistryError names the file when the file
    itself is unusable. Kept per file until it changes (see the module doc)."""
    path = Path(path or os.environ.get("TENANTLAKE_REGISTRY") or DEFAULT_PATH)
    key = os.path.abspath(path)
    try:
        st = path.stat()
        stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        hit = _CACHE.get(key)
        if hit is not None and hit[0] == stamp:
            return hit[1]
        # stamped before reading: a change during the read shows as a new stamp next time
        text = path.read_text(encoding="utf-8-sig")
    except OSError as e:
        raise RegistryError(f"{path}: cannot read the registry: {e.strerror}") from None
    except UnicodeDecodeError as e:  # saved as UTF-16 or Latin-1 by an editor
        raise RegistryError(f"{path}: not UTF-8 text (byte {e.start} cannot be read): save it as UTF-8") from None
    registry = parse_registry(text, str(path))
    _CACHE.pop(key, None)
    _CACHE[key] = (stamp, registry)
    while len(_CACHE) > _CACHE_SIZE:
        _CACHE.pop(next(iter(_CACHE)))
    return registry

"""The tenant_health UI plugin: loaded as Airflow loads it, mounted as the API server mounts it,
serving the `status` rows and the freshness charts; a fleet made late by the fixture shows late."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tenantlake.ops.status import JSON_KEYS
from tests.tenantlake.test_ops_fleet import LATE_ENTITY, LATE_TENANT, build_fleet, use_fleet

REPO = Path(__file__).resolve().parents[2]
PLUGIN = REPO / "plugins" / "tenant_health.py"


def load_plugin_module(name: str = "tenant_health_under_test"):
    """The plugin file as Airflow's loader imports it: a top-level module from its path."""
    loader = importlib.machinery.SourceFileLoader(name, str(PLUGIN))
    module = importlib.util.module_from_spec(importlib.util.spec_from_loader(name, loader))
    sys.modules[name] = module
    loader.exec_module(module)
    return module


class Rows(HTMLParser):
    """(class, tenant, entity, cells) of each row of table#tenant-health."""

    def __init__(self):
        super().__init__()
        self.rows, self._in, self._cell = [], False, None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table" and a.get("id") == "tenant-health":
            self._in = True
        elif self._in and tag == "tr" and "data-tenant" in a:
            self.rows.append((a["class"], a["data-tenant"], a["data-entity"], []))
        elif self._in and tag == "td" and self.rows:
            self._cell = ""

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data

    def handle_endtag(self, tag):
        if tag == "td" and self._cell is not None:
            self.rows[-1][3].append(self._cell)
            self._cell = None
        elif tag == "table":
            self._in = False


def table_rows(html: str):
    parser = Rows()
    parser.feed(html)
    return parser.rows


@pytest.fixture
def fleet(tmp_path, monkeypatch):
    fleet = build_fleet(tmp_path)
    use_fleet(monkeypatch, fleet)
    return fleet


@pytest.fixture
def plugin(fleet):
    module = load_plugin_module()
    module.app.dependency_overrides[module.authenticated] = lambda: None  # a signed-in user
    yield module
    module.app.dependency_overrides.clear()
    sys.modules.pop("tenant_health_under_test", None)


def test_the_page_shows_the_late_tenant_and_the_same_rows_as_status(plugin, fleet, capsys):
    client = TestClient(plugin.app)
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    rows = table_rows(page.text)
    [late] = [r for r in rows if r[1] == LATE_TENANT and r[2] == LATE_ENTITY]
    assert late[0] == "late" and late[3][2:5] == ["late", "29h 0m", "26h 0m"]
    # the rows `tenantlake status --json` prints, in the same order, with the same states
    import orjson

    from tenantlake.ops.status import status_command
    from tests.tenantlake.test_ops import _args

    assert status_command(_args("--json")) == 1
    status = orjson.loads(capsys.readouterr().out)
    assert [(r[1], r[2], r[0]) for r in rows] == [(s["tenant_id"], s["entity"], s["state"]) for s in status]
    assert '<div class="tenant" data-tenant="agency-002">' in page.text and page.text.count("<svg") == 5


def test_status_json_is_the_status_commands_json(plugin, fleet):
    rows = TestClient(plugin.app).get("/status.json").json()
    assert all(tuple(r) == JSON_KEYS for r in rows)
    [late] = [r for r in rows if r["state"] == "late"]
    assert (late["tenant_id"], late["entity"], late["objective_seconds"]) == (LATE_TENANT, LATE_ENTITY, 26 * 3600)
    assert 29 * 3600 <= late["lag_seconds"] < 29 * 3600 + 120


def test_the_figures_are_kept_a_minute(plugin, fleet, monkeypatch):
    client = TestClient(plugin.app)
    first = client.get("/status.json").json()
    (fleet.registry_path).write_text(fleet.registry_path.read_text().replace("agency-004", "agency-009"))
    assert client.get("/status.json").json() == first  # cached
    plugin.figures.clear()
    assert "agency-009" in {r["tenant_id"] for r in client.get("/status.json").json()}


def test_without_a_signed_in_user_the_plugin_answers_401(fleet):
    module = load_plugin_module("tenant_health_unauthenticated")
    try:
        for path in ("/", "/status.json"):
            response = TestClient(module.app).get(path)
            assert response.status_code == 401, path
    finally:
        sys.modules.pop("tenant_health_unauthenticated", None)


def test_the_api_server_mounts_it_under_its_prefix_and_lists_the_view(fleet, monkeypatch):
    """Airflow's own plugin loading (the plugins folder) and mounting (api_fastapi.app.init_plugins)."""
    from airflow import plugins_manager, settings
    from airflow.api_fastapi.app import init_plugins

    monkeypatch.setattr(settings, "PLUGINS_FOLDER", str(REPO / "plugins"))
    caches = [plugins_manager._get_plugins, plugins_manager.get_fastapi_plugins, plugins_manager._get_ui_plugins]
    for cached in caches:
        cached.cache_clear()
    try:
        [ours] = [p for p in plugins_manager._get_plugins()[0] if p.name == "tenant_health"]
        assert ours.external_views == [{"name": "Tenant health", "href": "tenant-health/", "url_route": "tenant-health",
                                        "destination": "nav", "category": "browse"}]
        views, _ = plugins_manager._get_ui_plugins()
        assert [v["url_route"] for v in views] == ["tenant-health"]
        root = FastAPI()
        init_plugins(root)
        [subapp] = [p["app"] for p in ours.fastapi_apps]
        module = sys.modules[type(ours).__module__]
        subapp.dependency_overrides[module.authenticated] = lambda: None
        response = TestClient(root).get("/tenant-health/")
        assert response.status_code == 200
        assert ("late", LATE_TENANT, LATE_ENTITY) in {r[:3] for r in table_rows(response.text)}
    finally:
        for cached in caches:
            cached.cache_clear()

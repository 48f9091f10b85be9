"""Tenant health inside Airflow's UI: the `tenantlake status` table and a freshness chart per tenant.

A FastAPI app mounted by the API server under /tenant-health (`/` the page, `/status.json` the
rows as `tenantlake status --json` prints them), and an external view that puts "Tenant health"
in the navigation and shows the page in Airflow's frame. Plugin endpoints are not behind Airflow's
login by themselves: every request here is checked with Airflow's own dependency (a bearer token,
or the UI's session cookie, which the frame sends).

The figures are computed by tenantlake.ops from the lake the API server's environment names (the
same TENANTLAKE_* settings the workers use), and kept for a minute, so a page left open and
reloaded does not rescan the batch log each time. Everything tenantlake is imported on first
request, never when Airflow loads its plugins.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

from airflow.plugins_manager import AirflowPlugin
from fastapi import Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse

URL_PREFIX = "/tenant-health"
CACHE_SECONDS = 60


async def authenticated(request: Request) -> None:
    """Airflow's check: 401 / 403 unless the request carries a valid token (header or cookie)."""
    from airflow.api_fastapi.core_api.security import get_user
    from fastapi.security import HTTPAuthorizationCredentials
    from fastapi.security.utils import get_authorization_scheme_param

    scheme, token = get_authorization_scheme_param(request.headers.get("Authorization"))
    credentials = HTTPAuthorizationCredentials(scheme=scheme, credentials=token) if scheme and token else None
    await get_user(request, None, credentials)


class _Figures:
    """The health rows and the page, computed at most once a minute."""

    def __init__(self):
        self._lock = threading.Lock()
        self._at = 0.0
        self._value = None

    def get(self):
        with self._lock:
            if self._value is None or time.monotonic() - self._at > CACHE_SECONDS:
                self._value, self._at = self._compute(), time.monotonic()
            return self._value

    def clear(self) -> None:
        with self._lock:
            self._value = None

    @staticmethod
    def _compute():
        from tenantlake.connections import central_access
        from tenantlake.ops.health import collect
        from tenantlake.ops.page import freshness_history, render
        from tenantlake.ops.status import json_rows
        from tenantlake.runtime import Runtime

        runtime = Runtime.from_env(central_access)
        now = datetime.now(UTC)
        rows, batches = collect(runtime.lake, runtime.state, runtime.registry, now=now)
        objectives = {(r.tenant_id, r.entity): r.objective_seconds for r in rows}
        return json_rows(rows), render(rows, freshness_history(batches, objectives, now), now)


figures = _Figures()
app = FastAPI(title="tenantlake tenant health", dependencies=[Depends(authenticated)])


@app.get("/", response_class=HTMLResponse)
def page() -> HTMLResponse:
    return HTMLResponse(figures.get()[1])


@app.get("/status.json")
def status_json() -> JSONResponse:
    return JSONResponse(figures.get()[0])


class TenantHealthPlugin(AirflowPlugin):
    name = "tenant_health"
    fastapi_apps = [{"app": app, "url_prefix": URL_PREFIX, "name": "Tenant health"}]
    external_views = [{
        "name": "Tenant health",
        "href": "tenant-health/",  # relative to the UI's base URL, so it works behind a path prefix
        "url_route": "tenant-health",  # shown inside Airflow's frame at <base>/plugin/tenant-health
        "destination": "nav",
        "category": "browse",
    }]

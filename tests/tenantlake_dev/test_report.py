"""The HTML report: one offline file, no PII, and charts that really render in a browser."""

import gzip
import json
import re
import shutil
import subprocess

import pytest

from tenantlake_dev.report import build_report

pytestmark = pytest.mark.slow
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
TENANTS = ["agency-001", "agency-002", "agency-003"]


@pytest.fixture(scope="module")
def report(tmp_path_factory, registry):
    """A small fleet through the real ingest and load (tests.conftest.pipeline_world), then the report."""
    from tests.conftest import pipeline_world

    home = tmp_path_factory.mktemp("report-world")
    with pipeline_world(home, registry, TENANTS) as runtime:
        path = build_report(f"{home}/home/warehouse.duckdb", runtime.lake, runtime.state, runtime.registry,
                            home / "report.html")
    return path, home / "home"


def test_report_is_one_offline_file_without_pii(report):
    path, home = report
    page = path.read_text()
    assert not re.search(r"<script[^>]+src=", page)  # plotly.js is inlined: it opens offline
    assert page.count("Plotly.newPlot") == 4 and "Pipeline health" in page
    for tid in TENANTS:
        for line in gzip.decompress((home / f"truth/{tid}/Consumer.jsonl.gz").read_bytes()).splitlines()[:200]:
            item = json.loads(line)
            full_name = f"{item['firstName']['S']} {item['lastName']['S']}"  # a bare surname occurs in plotly.js
            for value in (item["email"]["S"], item["phone"]["S"], full_name):
                assert value not in page


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium on this machine (.ci/run installs Debian's chromium)")
def test_charts_render_in_a_headless_browser(report, tmp_path):
    path, _ = report
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=10000"]
    dom = subprocess.run([CHROMIUM, *flags, "--dump-dom", f"file://{path}"], capture_output=True, text=True,
                         timeout=120).stdout
    assert dom.count('class="plot-container plotly"') == 4  # plotly drew every chart
    assert dom.count("<svg") >= 8 and "Creditor exposure across agencies" in dom
    shot = tmp_path / "report.png"
    subprocess.run([CHROMIUM, *flags, "--window-size=1200,2400", f"--screenshot={shot}", f"file://{path}"],
                   capture_output=True, timeout=120)
    assert shot.stat().st_size > 50_000  # a page with charts, not a blank one

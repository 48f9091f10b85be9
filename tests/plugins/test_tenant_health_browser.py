"""The tenant health page in a real browser (headless Chromium), served over HTTP by the plugin's
app: the DOM holds the table with the late tenant's row, and the screenshot shows the table (its
rows' state colours, where the table is drawn)."""

from __future__ import annotations

import shutil
import socket
import struct
import subprocess
import threading
import time
import zlib
from pathlib import Path

import pytest

from tenantlake.ops.page import COLOURS
from tests.plugins.test_tenant_health_plugin import load_plugin_module, table_rows
from tests.tenantlake.test_ops_fleet import LATE_ENTITY, LATE_TENANT, build_fleet, use_fleet

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(),
                                reason="no Chromium at /usr/bin/chromium (CI installs Debian's chromium when "
                                       "root; apt-get install -y chromium)")


def png_pixels(data: bytes) -> tuple[int, int, list[bytes]]:
    """(width, height, rows of RGBA bytes) of an 8-bit RGB/RGBA, non-interlaced PNG (what Chromium
    writes): enough to look for colours without an imaging library."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, header = 8, b"", None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        chunk = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", chunk)
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + length
    width, height, depth, colour, _, _, interlace = header
    assert depth == 8 and colour in (2, 6) and interlace == 0, header
    channels = 4 if colour == 6 else 3
    raw, stride, rows, prev = zlib.decompress(idat), width * channels, [], bytearray(width * channels)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - channels] if i >= channels else 0
            b, c = prev[i], (prev[i - channels] if i >= channels else 0)
            if kind == 1:
                line[i] = (line[i] + a) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + b) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (a + b) // 2) & 0xFF
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        rows.append(bytes(line) if channels == 4 else bytes(v for j in range(width) for v in (*line[j * 3:j * 3 + 3], 255)))
        prev = line
    return width, height, rows


def colour_band(rows: list[bytes], hex_colour: str, min_pixels: int) -> list[int]:
    """The screen rows holding at least `min_pixels` pixels of the colour (a table row's
    background, broken only by its cells' text)."""
    rgb = bytes.fromhex(hex_colour.lstrip("#"))
    return [y for y, row in enumerate(rows)
            if sum(row[x:x + 3] == rgb for x in range(0, len(row), 4)) >= min_pixels]


@pytest.fixture
def served(tmp_path, monkeypatch):
    """The plugin's app on a free local port (uvicorn in a thread), as a signed-in user sees it."""
    import uvicorn

    use_fleet(monkeypatch, build_fleet(tmp_path / "fleet"))
    module = load_plugin_module("tenant_health_in_browser")
    module.app.dependency_overrides[module.authenticated] = lambda: None
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(module.app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started
    yield f"http://127.0.0.1:{port}/"
    server.should_exit = True
    thread.join(10)


def _chromium(*args, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={cwd}/profile", *args], cwd=cwd,
                          capture_output=True, timeout=120)


def test_the_page_renders_in_chromium_with_the_late_tenant(served, tmp_path):
    dom = _chromium("--dump-dom", served, cwd=tmp_path)
    assert dom.returncode == 0, dom.stderr.decode()[-2000:]
    rows = table_rows(dom.stdout.decode())
    assert ("late", LATE_TENANT, LATE_ENTITY) in {r[:3] for r in rows}
    assert [r[0] for r in rows] == ["failing", "failing", "late", "never", "ok", "ok", "ok"]

    shot = tmp_path / "page.png"
    done = _chromium(f"--screenshot={shot}", "--window-size=1280,900", "--hide-scrollbars", served, cwd=tmp_path)
    assert done.returncode == 0 and shot.exists(), done.stderr.decode()[-2000:]
    width, height, pixels = png_pixels(shot.read_bytes())
    assert (width, height) == (1280, 900)
    # The table is drawn: each state's row background spans most of the table's width, in
    # worst-first order down the page, about 25 screen rows per table row.
    bands = {state: colour_band(pixels, COLOURS[state], min_pixels=600) for state in COLOURS}
    assert all(bands.values()), {s: len(b) for s, b in bands.items()}
    assert max(bands["failing"]) < min(bands["late"]) < max(bands["late"]) < min(bands["never"]) < min(bands["ok"])
    rows_tall = {state: len(band) for state, band in bands.items()}
    assert 20 <= rows_tall["late"] <= 30 and 20 <= rows_tall["never"] <= 30  # one row each
    assert 40 <= rows_tall["failing"] <= 60 and 60 <= rows_tall["ok"] <= 90  # two rows, three rows

"""The HTML report in a real browser: headless Chromium draws the curves, logs no error, loads
nothing from the network, and shows hostile names as text.

Chromium is driven through the DevTools protocol over a pipe (``--remote-debugging-pipe``: no
port, no extra package). Without Chromium these tests skip, saying so, except when ``CI`` is set
(``.ci/run`` sets it and installs Debian's ``chromium``): then they fail.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import json
import os
import select
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from test_report import HOSTILE, fixture_entries, hostile_entry

from lightreg.diagnose.report import build_figure, write_report

CHROMIUM = next(
    (
        found
        for name in ("chromium", "chromium-browser", "google-chrome")
        if (found := shutil.which(name))
    ),
    None,
)
TIMEOUT = 30.0
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--remote-debugging-pipe",
)


class Page:
    """One headless Chromium tab, driven over the DevTools pipe; records every error it sees."""

    def __init__(self, executable: str, profile: Path) -> None:
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()

        def pipes_on_fd_3_and_4() -> None:  # the DevTools pipe: Chromium reads fd 3, writes fd 4
            # first out of the way (either end may already sit on 3 or 4), then inheritable copies
            ends = [fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (to_browser_r, from_browser_w)]
            for target, fd in zip((3, 4), ends, strict=True):
                os.dup2(fd, target)

        self._process = subprocess.Popen(
            [executable, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=pipes_on_fd_3_and_4,
            close_fds=False,
        )
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._buffer = b""
        self._next_id = 0
        self.errors: list[str] = []
        (target,) = [
            t for t in self.send("Target.getTargets")["targetInfos"] if t["type"] == "page"
        ]
        attached = self.send("Target.attachToTarget", targetId=target["targetId"], flatten=True)
        self._session = attached["sessionId"]
        for domain in ("Runtime", "Log", "Page"):
            self.send(f"{domain}.enable", session=True)

    def send(self, method: str, session: bool = False, **params: Any) -> dict[str, Any]:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = self._session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._receive()
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]
            self._record(reply)

    def _receive(self) -> dict[str, Any]:
        deadline = time.monotonic() + TIMEOUT
        while b"\0" not in self._buffer:
            ready, _, _ = select.select([self._from_browser], [], [], deadline - time.monotonic())
            chunk = os.read(self._from_browser, 1 << 20) if ready else b""
            if not chunk:
                raise TimeoutError("Chromium stopped answering on the DevTools pipe")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def _record(self, event: dict[str, Any]) -> None:
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.consoleAPICalled" and params["type"] in (
            "error",
            "assert",
            "warning",
        ):
            self.errors.append(
                " ".join(str(a.get("value", a.get("description"))) for a in params["args"])
            )
        elif method == "Runtime.exceptionThrown":
            self.errors.append(
                params["exceptionDetails"].get("exception", {}).get("description", "exception")
            )
        elif method == "Log.entryAdded" and params["entry"]["level"] in ("error", "warning"):
            self.errors.append(params["entry"]["text"])
        elif method == "Page.loadEventFired":
            self.loaded = True

    def open(self, url: str, width: int = 1280, height: int = 1000) -> None:
        """Load ``url`` and wait until it has loaded and two frames have been painted."""
        self.send(
            "Emulation.setDeviceMetricsOverride",
            session=True,
            width=width,
            height=height,
            deviceScaleFactor=1,
            mobile=False,
        )
        self.loaded = False
        self.send("Page.navigate", session=True, url=url)
        while not self.loaded:
            self._record(self._receive())
        self.evaluate(
            "new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)))"
        )

    def evaluate(self, expression: str) -> Any:
        result = self.send(
            "Runtime.evaluate",
            session=True,
            expression=expression,
            awaitPromise=True,
            returnByValue=True,
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def screenshot(self, clip: dict[str, float]) -> bytes:
        import base64

        shot = self.send(
            "Page.captureScreenshot", session=True, format="png", clip={**clip, "scale": 1}
        )
        return base64.b64decode(shot["data"])

    def close(self) -> None:
        with contextlib.suppress(OSError, TimeoutError, RuntimeError):
            self.send("Browser.close")
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        os.close(self._to_browser)
        os.close(self._from_browser)


ENTRIES = [*fixture_entries("overfitting", "keras_good_fit"), hostile_entry()]


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory):
    """One Chromium for the module (plotly.js takes seconds to parse: each page is loaded once)."""
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("CI is set but no Chromium was found (apt-get install chromium)")
        pytest.skip("no Chromium found (apt-get install chromium): the page is not checked")
    opened = Page(CHROMIUM, tmp_path_factory.mktemp("profile"))
    yield opened
    opened.close()


@pytest.fixture(scope="module")
def report(browser: Page, tmp_path_factory: pytest.TempPathFactory) -> Page:
    """The page of three runs (two real logs, one named to inject a script), loaded."""
    page = write_report(
        tmp_path_factory.mktemp("report") / "report.html",
        ENTRIES,
        title=HOSTILE,
        decisions=["round 1: overfitting -> dropout 0 -> 0.3", HOSTILE],
        recipe_diff=f"-  dropout: 0.0\n+  dropout: 0.3\n+{HOSTILE}\n",
    )
    browser.errors.clear()
    browser.open(page.as_uri())
    return browser


def pixels_of(png: bytes, color: str, tolerance: int = 40) -> int:
    """How many pixels of ``png`` are within ``tolerance`` (per channel) of ``color`` (#rrggbb)."""
    import numpy as np
    from PIL import Image

    want = np.array([int(color[i : i + 2], 16) for i in (1, 3, 5)])
    image = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=int)
    return int((np.abs(image - want) <= tolerance).all(axis=-1).sum())


def center_of(page: Page, selector: str) -> dict[str, float]:
    """The centre of the element ``selector`` finds, in page coordinates for a mouse event."""
    return page.evaluate(
        f"(() => {{ const r = {selector}.getBoundingClientRect();"
        " return {x: r.x + r.width / 2, y: r.y + r.height / 2}; })()"
    )


def click(page: Page, at: dict[str, float]) -> None:
    for kind in ("mousePressed", "mouseReleased"):
        page.send(
            "Input.dispatchMouseEvent", session=True, type=kind, button="left", clickCount=1, **at
        )
    page.evaluate("new Promise(done => setTimeout(done, 600))")  # plotly waits for a double click


def test_the_page_logs_no_error_and_runs_no_injected_script(report: Page) -> None:
    assert report.errors == []
    buttons = report.evaluate(
        "[...document.querySelectorAll('.modebar-btn')].map(e => e.getAttribute('data-title'))"
    )
    titles = [title.lower() for title in buttons]  # plotly.js 2 says "png", 3 says "PNG"
    assert "download plot as a png" in titles and "share chart..." not in titles  # no upload
    assert report.evaluate("document.title") == HOSTILE  # shown as text, never run
    assert report.evaluate("document.querySelectorAll('script').length") == report.evaluate(
        "document.querySelectorAll('script:not([src])').length"
    )
    legend = report.evaluate(
        "[...document.querySelectorAll('.legend .legendtext')].map(e => e.textContent)"
    )
    assert [text for text in legend if text in {e.label for e in ENTRIES}] == [
        entry.label for entry in ENTRIES
    ]


def test_the_curves_are_drawn(report: Page, tmp_path: Path) -> None:
    figure = build_figure(ENTRIES)
    count = report.evaluate(
        "document.querySelectorAll('.js-plotly-plot .scatterlayer .trace .point').length"
    )
    assert count == sum(len(trace.x) for trace in figure.data)
    box = report.evaluate(
        "(() => { const r = document.querySelector('.js-plotly-plot').getBoundingClientRect();"
        " return {x: r.x, y: r.y + window.scrollY, width: r.width, height: r.height}; })()"
    )
    png = report.screenshot(box)
    (tmp_path / "curves.png").write_bytes(png)  # look at it: pytest --basetemp=DIR keeps it
    colors = {trace.line.color or trace.marker.color for trace in figure.data}
    assert len(colors) == len(ENTRIES)
    for color in colors:  # each entry's curves, in its own colour, cover part of the plot
        assert pixels_of(png, color) > 500, color


def test_hovering_a_point_shows_its_epoch_and_value(report: Page) -> None:
    curves = ENTRIES[0].diagnosis.curves  # traces: train loss, val loss, ...: [1] is val loss
    at = center_of(
        report, "document.querySelectorAll('.scatterlayer .trace')[1].querySelectorAll('.point')[3]"
    )
    report.send("Input.dispatchMouseEvent", session=True, type="mouseMoved", **at)
    report.evaluate("new Promise(done => setTimeout(done, 300))")
    hover = report.evaluate(
        "[...document.querySelectorAll('.hoverlayer .hovertext')].map(e => e.textContent).join('|')"
    )
    assert f"epoch 3: {curves.val[3]:.4g}" in hover and curves.val_metric in hover
    assert report.errors == []


def test_clicking_an_entry_in_the_legend_toggles_all_its_curves(report: Page) -> None:
    groups = [trace.legendgroup for trace in build_figure(ENTRIES).data]
    first_item = center_of(report, "document.querySelectorAll('.legend .traces .legendtoggle')[0]")
    click(report, first_item)
    visible = report.evaluate(
        "document.querySelector('.js-plotly-plot')._fullData.map(t => t.visible)"
    )
    assert visible == ["legendonly" if group == "0" else True for group in groups]
    click(report, first_item)
    visible = report.evaluate(
        "document.querySelector('.js-plotly-plot')._fullData.map(t => t.visible)"
    )
    assert visible == [True] * len(groups)
    assert report.errors == []


def test_the_checker_sees_errors_and_network_loads(browser: Page, tmp_path: Path) -> None:
    """The browser checks above are only worth something if a broken page fails them."""
    bad = tmp_path / "bad.html"
    bad.write_text(
        "<html><body><script src='http://example.invalid/plotly.js'></script>"
        "<script>console.error('boom'); undefinedFunction();</script></body></html>"
    )
    browser.errors.clear()
    browser.open(bad.as_uri())
    errors = list(browser.errors)
    assert any("boom" in error for error in errors), errors
    assert any("undefinedFunction" in error for error in errors), errors
    assert any("ERR_" in error or "Failed to load" in error for error in errors), errors

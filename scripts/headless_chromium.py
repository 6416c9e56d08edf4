"""Headless Chromium driven over the DevTools protocol: load a page, collect console errors and
uncaught exceptions, evaluate JS, take a screenshot, dump the DOM.

Used by the report tests (index.html must load without console errors) and by
scripts/webui_screenshot.py (NNI's web UI). Debian's chromium at /usr/bin/chromium; the
DevTools endpoint listens on 127.0.0.1 only, on a port Chromium picks (read from its
DevToolsActivePort file). The browser is one process group we start and end ourselves.

    with HeadlessChromium() as browser:
        page = browser.open("file:///tmp/report/index.html")
        print(page.errors, page.evaluate("document.title"))
        page.screenshot(Path("shot.png"))
"""
from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any, Optional

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-extensions",
         "--disable-dev-shm-usage", "--hide-scrollbars", "--mute-audio")


def find_chromium() -> Optional[str]:
    """The Chromium executable, or None when none is installed."""
    for candidate in CHROMIUM_CANDIDATES:
        path = candidate if os.path.isabs(candidate) and os.access(candidate, os.X_OK) else shutil.which(candidate)
        if path:
            return path
    return None


class Page:
    """One tab: its DevTools websocket, and the errors it has reported so far."""

    def __init__(self, ws_url: str) -> None:
        from websockets.sync.client import connect

        self._stack = contextlib.ExitStack()
        self._ws = self._stack.enter_context(connect(ws_url, max_size=64 * 1024 * 1024, open_timeout=10))
        self._next_id = 0
        self.errors: list[str] = []
        self.console: list[str] = []
        self.events: list[str] = []
        for method in ("Page.enable", "Runtime.enable", "Log.enable"):
            self.call(method)

    def call(self, method: str, timeout_s: float = 30.0, **params: Any) -> dict:
        """Send one DevTools command and return its result (events seen meanwhile are recorded)."""
        self._next_id += 1
        ident = self._next_id
        self._ws.send(json.dumps({"id": ident, "method": method, "params": params}))
        deadline = time.monotonic() + timeout_s
        while True:
            message = self._receive(deadline, method)
            if message.get("id") == ident:
                if "error" in message:
                    raise RuntimeError(f"DevTools {method} failed: {message['error']}")
                return message.get("result", {})

    def _receive(self, deadline: float, waiting_for: str) -> dict:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"no DevTools answer for {waiting_for}")
        message = json.loads(self._ws.recv(timeout=remaining))
        if "method" in message:
            self._record(message["method"], message.get("params", {}))
        return message

    def _record(self, method: str, params: dict) -> None:
        self.events.append(method)
        if method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            text = details.get("exception", {}).get("description") or details.get("text", "exception")
            self.errors.append(f"Uncaught {text} ({details.get('url', '')}:{details.get('lineNumber', '?')})")
        elif method == "Runtime.consoleAPICalled":
            args = " ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", []))
            self.console.append(f"console.{params.get('type')}: {args}")
            if params.get("type") in ("error", "assert"):
                self.errors.append(f"console.{params.get('type')}: {args}")
        elif method == "Log.entryAdded":
            entry = params.get("entry", {})
            if entry.get("level") == "error":
                self.errors.append(f"{entry.get('source', 'log')} error: {entry.get('text', '')} {entry.get('url', '')}".strip())

    def navigate(self, url: str, timeout_s: float = 30.0, settle_s: float = 0.5) -> None:
        """Load `url` and wait for its load event, then `settle_s` more for late scripts and errors."""
        self.call("Page.navigate", url=url)
        deadline = time.monotonic() + timeout_s
        while "Page.loadEventFired" not in self.events:
            self._receive(deadline, f"the load event of {url}")
        self.pump(settle_s)

    def pump(self, seconds: float) -> None:
        """Record events for `seconds` (console errors that arrive after load)."""
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            try:
                message = json.loads(self._ws.recv(timeout=left))
            except TimeoutError:
                return
            if "method" in message:
                self._record(message["method"], message.get("params", {}))

    def evaluate(self, expression: str, timeout_s: float = 30.0) -> Any:
        """Evaluate JS in the page and return its value (RuntimeError if it throws)."""
        result = self.call("Runtime.evaluate", timeout_s, expression=expression, returnByValue=True,
                           awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"JS error in {expression[:60]!r}: {result['exceptionDetails'].get('text')}")
        return result.get("result", {}).get("value")

    def wait_for(self, expression: str, timeout_s: float = 30.0, poll_s: float = 0.5) -> Any:
        """Poll a JS expression until it is truthy; returns its value (TimeoutError otherwise)."""
        deadline = time.monotonic() + timeout_s
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"page never satisfied {expression!r} within {timeout_s:.0f} s")
            self.pump(poll_s)

    def click(self, element_js: str) -> None:
        """Click the centre of the element `element_js` evaluates to, as a user would (mouse events)."""
        box = self.evaluate(f"(() => {{ const e = {element_js}; if (!e) return null; e.scrollIntoView({{block: 'center'}});"
                            " const r = e.getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; })()")
        if not box:
            raise ValueError(f"no element to click: {element_js}")
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            self.call("Input.dispatchMouseEvent", type=kind, x=box[0], y=box[1], button="left", clickCount=1)

    def set_viewport(self, width: int, height: int) -> None:
        self.call("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=False)

    def screenshot(self, path: Path, full_page: bool = False) -> Path:
        """Save a PNG of the viewport (or of the whole page)."""
        params: dict[str, Any] = {"format": "png"}
        if full_page:
            metrics = self.call("Page.getLayoutMetrics")
            size = metrics.get("cssContentSize") or metrics["contentSize"]
            params.update(captureBeyondViewport=True,
                          clip={"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1})
        data = self.call("Page.captureScreenshot", **params)["data"]
        path = Path(path)
        path.write_bytes(base64.b64decode(data))
        return path

    def dump_dom(self) -> str:
        """The rendered DOM as HTML (what `chromium --dump-dom` prints)."""
        return self.evaluate("document.documentElement.outerHTML")

    def close(self) -> None:
        self._stack.close()


class HeadlessChromium:
    """A headless Chromium we start, with its DevTools endpoint on 127.0.0.1; ended on exit."""

    def __init__(self, executable: Optional[str] = None, width: int = 1400, height: int = 1000) -> None:
        self.executable = executable or find_chromium()
        if self.executable is None:
            raise FileNotFoundError(f"Chromium not found (tried {', '.join(CHROMIUM_CANDIDATES)}); "
                                    "install it with scripts/system_deps.sh")
        self.size = (width, height)
        self._profile: Optional[tempfile.TemporaryDirectory] = None
        self._process: Optional[subprocess.Popen] = None
        self._pages: list[Page] = []
        self.port: Optional[int] = None

    def __enter__(self) -> "HeadlessChromium":
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def start(self, timeout_s: float = 30.0) -> None:
        self._profile = tempfile.TemporaryDirectory(prefix="gensynth-chromium-")
        profile = Path(self._profile.name)
        command = [self.executable, *FLAGS, f"--user-data-dir={profile}", "--remote-debugging-address=127.0.0.1",
                   "--remote-debugging-port=0", f"--window-size={self.size[0]},{self.size[1]}", "about:blank"]
        self._process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                         start_new_session=True)
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + timeout_s
        while not (port_file.is_file() and port_file.read_text().strip()):
            if self._process.poll() is not None:
                raise RuntimeError(f"chromium exited with status {self._process.returncode} before DevTools started")
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"chromium did not open its DevTools port within {timeout_s:.0f} s")
            time.sleep(0.1)
        self.port = int(port_file.read_text().split()[0])

    def open(self, url: str, timeout_s: float = 30.0, settle_s: float = 0.5) -> Page:
        """A new tab showing `url` (loaded)."""
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}/json/new?about:blank", method="PUT")
        with urllib.request.urlopen(request, timeout=10) as response:
            target = json.loads(response.read())
        page = Page(target["webSocketDebuggerUrl"])
        self._pages.append(page)
        page.set_viewport(*self.size)
        page.navigate(url, timeout_s=timeout_s, settle_s=settle_s)
        return page

    def stop(self) -> None:
        for page in self._pages:
            try:
                page.close()
            except Exception:  # noqa: BLE001 - the browser may be gone already
                pass
        self._pages.clear()
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)  # the group we started (chromium and its helpers)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        if self._profile is not None:
            self._profile.cleanup()
            self._profile = None

"""Open a cosma HTML report in headless Chromium: screenshot it and check that hovering a rectangle names its tensor.

Usage (from the repository root; needs the Debian ``chromium`` package, nothing from pip):

    python benchmarks/report_in_browser.py report.html --screenshot docs/img/report_mobilenet_v2.png

The browser is driven over the DevTools protocol through a pipe (``--remote-debugging-pipe``: JSON
messages ending in a NUL byte on file descriptors 3 and 4), so no WebSocket client is needed. The
hover is a real one: the mouse is moved to the middle of the largest rectangle with
``Input.dispatchMouseEvent``, and the page's own script must then show that rectangle's tensor name
in its tooltip. Exit status 0 when it does, 1 when it does not, 2 when Chromium is missing.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: The first of these on PATH is used.
BROWSERS = ("chromium", "chromium-browser", "google-chrome")


def _onto_3_and_4(read_end: int, write_end: int) -> None:
    # Copies above 9 first, so that neither end is overwritten when it already sits on 3 or 4.
    read_end, write_end = fcntl.fcntl(read_end, fcntl.F_DUPFD, 10), fcntl.fcntl(write_end, fcntl.F_DUPFD, 10)
    os.dup2(read_end, 3)
    os.dup2(write_end, 4)


def find_browser() -> str | None:
    return next((path for name in BROWSERS if (path := shutil.which(name))), None)


@dataclass(frozen=True)
class HoverResult:
    tensor: str  # the data-tensor of the rectangle hovered
    tooltip: str  # the text the page showed
    visible: bool


class Browser:
    """A headless Chromium with one page, spoken to over the DevTools pipe."""

    def __init__(self, executable: str, width: int, height: int) -> None:
        self._profile = tempfile.mkdtemp(prefix="cosma-chromium-")
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()
        # Chromium reads commands on fd 3 and writes replies on fd 4.
        self._process = subprocess.Popen(
            [
                executable,
                "--headless",
                "--remote-debugging-pipe",
                "--no-sandbox",  # containers run as root; the page is our own file
                "--disable-gpu",
                "--no-first-run",
                f"--user-data-dir={self._profile}",
                f"--window-size={width},{height}",
                "about:blank",
            ],
            pass_fds=(3, 4),  # kept open in the child after the dup2 below put the pipe ends there
            preexec_fn=lambda: _onto_3_and_4(to_browser_r, from_browser_w),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._buffer = b""
        self._next_id = 0
        targets = self.call("Target.getTargets")["targetInfos"]
        page = next(t for t in targets if t["type"] == "page")
        self._session = self.call("Target.attachToTarget", targetId=page["targetId"], flatten=True)["sessionId"]
        self.page("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=False)

    def call(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._read()
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})

    def page(self, method: str, **params: Any) -> dict[str, Any]:
        return self.call(method, self._session, **params)

    def evaluate(self, expression: str) -> Any:
        result = self.page("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"page script failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def open(self, url: str) -> None:
        self.page("Page.enable")
        self.page("Page.navigate", url=url)
        self.evaluate(
            "new Promise(r => document.readyState === 'complete' ? r() : window.addEventListener('load', () => r()))"
        )

    def screenshot(self, path: Path) -> None:
        data = self.page("Page.captureScreenshot", format="png")["data"]
        path.write_bytes(base64.b64decode(data))

    def hover_largest_rectangle(self) -> HoverResult:
        """Move the mouse onto the middle of the largest visible tensor rectangle and read the tooltip."""
        target = self.evaluate(
            """(() => {
              let best = null, area = 0;
              for (const r of document.querySelectorAll('#cosma-timeline rect[data-tensor]')) {
                const b = r.getBoundingClientRect();
                if (b.width * b.height > area) { area = b.width * b.height; best = {r, b}; }
              }
              if (best.b.top < 0 || best.b.bottom > window.innerHeight) {
                best.r.scrollIntoView({block: 'center', inline: 'center'});
              }
              const b = best.r.getBoundingClientRect();
              return {tensor: best.r.dataset.tensor, x: b.left + b.width / 2, y: b.top + b.height / 2};
            })()"""
        )
        self.page("Input.dispatchMouseEvent", type="mouseMoved", x=target["x"], y=target["y"])
        tip = self.evaluate(
            "(() => { const t = document.getElementById('cosma-tip');"
            " return {text: t.textContent, visible: getComputedStyle(t).display !== 'none'}; })()"
        )
        return HoverResult(target["tensor"], tip["text"], tip["visible"])

    def close(self) -> None:
        with contextlib.suppress(OSError, RuntimeError):  # the pipe may close before the reply
            self.call("Browser.close")
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        os.close(self._to_browser)
        os.close(self._from_browser)
        shutil.rmtree(self._profile, ignore_errors=True)

    def _read(self) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            chunk = os.read(self._from_browser, 1 << 16)
            if not chunk:
                raise RuntimeError("Chromium closed the DevTools pipe")
            self._buffer += chunk
        message, _, self._buffer = self._buffer.partition(b"\0")
        return json.loads(message)


def check_report(html: Path, *, screenshot: Path | None = None, width: int = 1300, height: int = 1500) -> HoverResult:
    """Open ``html``, optionally screenshot it with a tooltip showing, and return what hovering showed."""
    executable = find_browser()
    if executable is None:
        raise FileNotFoundError(f"no browser found (looked for {', '.join(BROWSERS)}); apt-get install chromium")
    browser = Browser(executable, width, height)
    try:
        browser.open(html.resolve().as_uri())
        browser.evaluate("window.scrollTo(0, 0)")
        hovered = browser.hover_largest_rectangle()
        if screenshot is not None:
            browser.screenshot(screenshot)
        return hovered
    finally:
        browser.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", type=Path, help="HTML page written by `cosma report`")
    parser.add_argument("--screenshot", type=Path, help="PNG to write of the page with the tooltip showing")
    parser.add_argument("--width", type=int, default=1300)
    parser.add_argument("--height", type=int, default=1500)
    args = parser.parse_args(argv)
    try:
        hovered = check_report(args.report, screenshot=args.screenshot, width=args.width, height=args.height)
    except FileNotFoundError as e:
        print(e, file=sys.stderr)
        return 2
    ok = hovered.visible and hovered.tensor in hovered.tooltip
    first = hovered.tooltip.splitlines()[0] if hovered.tooltip else "(empty)"
    print(f"hovered {hovered.tensor}: tooltip {'shows' if ok else 'does not show'} it ({first!r})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

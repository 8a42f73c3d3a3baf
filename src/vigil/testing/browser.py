"""A real browser for tests: Debian's headless Chromium inside a lab host, over DevTools.

`Chromium(host)` starts `chromium --headless=new` in the host (its network,
mount and PID namespaces: it reaches only what the host reaches, which in the
lab is other lab hosts), with a fresh profile under the host's /run and every
background service that would phone home turned off. The DevTools endpoint
listens on the host's loopback on a port Chromium picks; the test connects to
it through a socket opened in the host's namespace (`Host.connect`) and speaks
the protocol with `websocket-client`, one flat session per tab.

    with Chromium(lab.host("client")) as browser:
        tab = browser.open("http://198.51.100.6:9694/")
        wait_until(lambda: tab.evaluate("document.title") == "...", 10)
        png = tab.screenshot()

Everything it starts is stopped on leaving the block, failure or not (the lab
stops it too at teardown, as every process spawned in a host).
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import websocket

from vigil.testing.wait import wait_until

if TYPE_CHECKING:
    from vigil.lab.host import Host, LabProcess

#: Debian's package `chromium`
PROGRAM = "chromium"
PROFILE = "/run/vigil-chromium"
#: nothing that talks to anything but the page: no updates, sync, safe browsing, metrics
QUIET = ("--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-default-apps", "--disable-extensions", "--disable-domain-reliability",
         "--disable-client-side-phishing-detection", "--disable-breakpad",
         "--metrics-recording-only", "--no-first-run", "--no-default-browser-check",
         "--no-pings", "--disable-features=Translate,OptimizationHints,MediaRouter",
         "--disable-dev-shm-usage", "--disable-gpu", "--mute-audio", "--hide-scrollbars")
_LISTENING = re.compile(r"DevTools listening on (ws://127\.0\.0\.1:(\d+)(/devtools/\S+))")


class BrowserError(AssertionError):
    """The browser answered a command with an error, or a script threw."""


def available() -> bool:
    return shutil.which(PROGRAM) is not None


class Chromium:
    """Headless Chromium in a lab host; `open` gives tabs to drive."""

    def __init__(self, host: Host, width: int = 1280, height: int = 860, timeout: float = 30.0):
        self.host = host
        self.width = width
        self.height = height
        self.timeout = timeout
        self.process: LabProcess | None = None
        self._ws: websocket.WebSocket | None = None
        self._ids = itertools.count(1)

    def __enter__(self) -> Chromium:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()

    def start(self) -> None:
        self.host.run(["mkdir", "-p", PROFILE])
        self.process = self.host.spawn(
            [PROGRAM, "--headless=new", "--no-sandbox", "--remote-debugging-address=127.0.0.1",
             "--remote-debugging-port=0", f"--user-data-dir={PROFILE}",
             f"--window-size={self.width},{self.height}", *QUIET, "about:blank"],
            name="chromium", env={"HOME": PROFILE, "TMPDIR": PROFILE})
        process = self.process
        found = wait_until(lambda: _LISTENING.search(process.output()) or not process.alive(),
                           self.timeout, "Chromium's DevTools endpoint")
        if not isinstance(found, re.Match):
            raise BrowserError(f"Chromium ended before listening:\n{process.output()[-3000:]}")
        url, port = found.group(1), int(found.group(2))
        sock = self.host.connect("127.0.0.1", port, timeout=self.timeout)
        # no Origin header: DevTools refuses web origins it was not told to allow
        self._ws = websocket.create_connection(url, socket=sock, timeout=self.timeout,
                                               suppress_origin=True)

    def send(self, method: str, params: dict[str, Any] | None = None,
             session: str | None = None) -> dict[str, Any]:
        """One DevTools command; its result (events that arrive meanwhile are dropped)."""
        if self._ws is None:
            raise BrowserError("the browser is not running")
        number = next(self._ids)
        message: dict[str, Any] = {"id": number, "method": method, "params": params or {}}
        if session is not None:
            message["sessionId"] = session
        self._ws.send(json.dumps(message))
        while True:
            answer = json.loads(self._ws.recv())
            if answer.get("id") != number:
                continue
            if "error" in answer:
                raise BrowserError(f"{method}: {answer['error']}")
            result: dict[str, Any] = answer.get("result", {})
            return result

    def open(self, url: str) -> Tab:
        """A new tab showing `url`, once its document has loaded."""
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})
        tab = Tab(self, str(session["sessionId"]))
        tab.send("Emulation.setDeviceMetricsOverride", {
            "width": self.width, "height": self.height, "deviceScaleFactor": 1,
            "mobile": False})
        tab.send("Page.navigate", {"url": url})
        wait_until(lambda: tab.evaluate("location.href") == url
                   and tab.evaluate("document.readyState") == "complete",
                   self.timeout, f"{url} loaded in Chromium")
        return tab

    def close(self) -> None:
        ws, self._ws = self._ws, None
        if ws is not None:
            with contextlib.suppress(OSError, websocket.WebSocketException):
                ws.send(json.dumps({"id": next(self._ids), "method": "Browser.close"}))
            ws.close()
        process, self.process = self.process, None
        if process is not None:
            process.stop(timeout=5.0)
        self.host.run(["rm", "-rf", PROFILE], check=False)


class Tab:
    """One page of the browser: evaluate scripts in it, take screenshots."""

    def __init__(self, browser: Chromium, session: str):
        self.browser = browser
        self.session = session

    def send(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        return self.browser.send(method, params, self.session)

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (promises awaited)."""
        answer = self.send("Runtime.evaluate", {"expression": expression,
                                                "returnByValue": True, "awaitPromise": True})
        if "exceptionDetails" in answer:
            details = answer["exceptionDetails"]
            raise BrowserError(f"{expression!r} threw: "
                               f"{details.get('exception', {}).get('description', details)}")
        return answer.get("result", {}).get("value")

    def screenshot(self) -> bytes:
        """The page as it is drawn now, as PNG."""
        data = self.send("Page.captureScreenshot", {"format": "png"})["data"]
        return base64.b64decode(data)

    @contextlib.contextmanager
    def screenshot_on_failure(self, path: Path) -> Iterator[None]:
        """What the page showed when the block failed, saved at `path` for whoever reads
        the failure; a screenshot that cannot be taken never hides the failure itself."""
        try:
            yield
        except BaseException:
            with contextlib.suppress(Exception):
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(self.screenshot())
            raise


__all__ = ["PROGRAM", "BrowserError", "Chromium", "Tab", "available"]

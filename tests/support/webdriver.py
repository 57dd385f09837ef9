"""A headless Chromium driven by chromedriver through the W3C WebDriver HTTP API, with urllib
only (no Selenium): start ``chromedriver --port=<free>``, open a session, find elements by
CSS, type (a file input takes the file's absolute path), click, read text and table rows,
scroll an element into view, take screenshots.

    with Browser.start(tmp_path / "telechargements") as browser:
        browser.open("http://127.0.0.1:8000/connexion")
        browser.type("#identifiant", "water")
        browser.click("main form button[type=submit]")
        browser.screenshot(tmp_path / "accueil.png")

Everything is bounded: each request to chromedriver (60 s) and each ``wait_until``.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

CHROMIUM_CANDIDATES = ("chromium", "chromium-browser", "google-chrome")
CHROMEDRIVER_CANDIDATES = ("chromedriver",)
ELEMENT = "element-6066-11e4-a52e-4f735466cecf"  # the W3C key of an element reference
REQUEST_TIMEOUT = 60.0


class WebDriverError(RuntimeError):
    def __init__(self, error: str, message: str):
        super().__init__(f"{error}: {message.splitlines()[0] if message else ''}")
        self.error = error


def _which(candidates: tuple[str, ...], fallback: str) -> str | None:
    for name in candidates:
        found = shutil.which(name)
        if found:
            return found
    return fallback if Path(fallback).exists() else None


def chromium_path() -> str | None:
    return _which(CHROMIUM_CANDIDATES, "/usr/bin/chromium")


def chromedriver_path() -> str | None:
    return _which(CHROMEDRIVER_CANDIDATES, "/usr/bin/chromedriver")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Browser:
    """One chromedriver process (its own process group) and one headless Chromium session."""

    def __init__(self, driver: subprocess.Popen, port: int, downloads: Path, log: Path):
        self.driver = driver
        self.base = f"http://127.0.0.1:{port}"
        self.downloads = downloads
        self.log = log
        self.session: str | None = None

    # --- life -------------------------------------------------------------------------------

    @classmethod
    def start(
        cls, downloads: Path, *, log: Path | None = None, window: tuple[int, int] = (1280, 1400)
    ) -> Browser:
        chromium, chromedriver = chromium_path(), chromedriver_path()
        if chromium is None or chromedriver is None:
            raise FileNotFoundError("chromium or chromedriver is not installed")
        downloads.mkdir(parents=True, exist_ok=True)
        log = log or downloads.parent / "chromedriver.log"
        port = free_port()
        with open(log, "wb") as out:
            driver = subprocess.Popen(
                [chromedriver, f"--port={port}"],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                process_group=0,  # Chromium is its child: one killpg stops both
            )
        browser = cls(driver, port, downloads, log)
        try:
            browser._wait_ready()
            browser._new_session(chromium, window)
        except BaseException:
            browser.quit()
            raise
        return browser

    def _wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.driver.poll() is not None:
                raise RuntimeError(f"chromedriver exited: {self.log.read_text(errors='replace')}")
            with contextlib.suppress(OSError, WebDriverError):
                if self._call("GET", "/status", timeout=2)["ready"]:
                    return
            time.sleep(0.1)
        raise TimeoutError(f"chromedriver not ready after {timeout:.0f} s")

    def _new_session(self, chromium: str, window: tuple[int, int]) -> None:
        options = {
            "binary": chromium,
            "args": [
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                f"--window-size={window[0]},{window[1]}",
            ],
            "prefs": {
                "download.default_directory": str(self.downloads),
                "download.prompt_for_download": False,
                "download.directory_upgrade": True,
                "safebrowsing.enabled": False,
            },
        }
        value = self._call(
            "POST",
            "/session",
            {
                "capabilities": {
                    "alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": options}
                }
            },
        )
        self.session = value["sessionId"]
        # headless Chromium may ignore the download preference: say it again through CDP
        with contextlib.suppress(WebDriverError):
            self.cdp(
                "Browser.setDownloadBehavior",
                {"behavior": "allow", "downloadPath": str(self.downloads)},
            )

    def quit(self) -> None:
        """End the session, then chromedriver's process group (SIGTERM, then SIGKILL)."""
        if self.session is not None:
            with contextlib.suppress(OSError, WebDriverError):
                self._call("DELETE", f"/session/{self.session}", timeout=20)
            self.session = None
        for sig in (signal.SIGTERM, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.driver.pid, sig)
            try:
                self.driver.wait(timeout=10)
                break
            except subprocess.TimeoutExpired:
                continue
        with contextlib.suppress(ProcessLookupError):  # what Chromium left in the group
            os.killpg(self.driver.pid, signal.SIGKILL)

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc) -> None:
        self.quit()

    # --- protocol ---------------------------------------------------------------------------

    def _call(self, method: str, path: str, body: dict | None = None, timeout=REQUEST_TIMEOUT):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.base + path,
            data=data,
            method=method,
            headers={"Content-Type": "application/json; charset=utf-8"},
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return json.loads(response.read())["value"]
        except urllib.error.HTTPError as exc:
            try:
                value = json.loads(exc.read())["value"]
            except (ValueError, KeyError):
                raise WebDriverError("http error", f"{exc.code} {exc.reason}") from None
            raise WebDriverError(value.get("error", "?"), value.get("message", "")) from None

    def _session(self, method: str, path: str, body: dict | None = None):
        return self._call(method, f"/session/{self.session}{path}", body)

    def cdp(self, command: str, params: dict | None = None):
        return self._session("POST", "/goog/cdp/execute", {"cmd": command, "params": params or {}})

    # --- pages and elements -----------------------------------------------------------------

    def open(self, url: str) -> None:
        self._session("POST", "/url", {"url": url})

    @property
    def url(self) -> str:
        return self._session("GET", "/url")

    @property
    def title(self) -> str:
        return self._session("GET", "/title")

    def find(self, css: str, within: str | None = None) -> str:
        path = f"/element/{within}/element" if within else "/element"
        return self._session("POST", path, {"using": "css selector", "value": css})[ELEMENT]

    def find_all(self, css: str, within: str | None = None) -> list[str]:
        path = f"/element/{within}/elements" if within else "/elements"
        found = self._session("POST", path, {"using": "css selector", "value": css})
        return [e[ELEMENT] for e in found]

    def text(self, css: str = "body") -> str:
        return self.text_of(self.find(css))

    def text_of(self, element: str) -> str:
        return self._session("GET", f"/element/{element}/text")

    def attribute(self, css: str, name: str) -> str | None:
        return self._session("GET", f"/element/{self.find(css)}/attribute/{name}")

    def rows(self, table_css: str) -> list[list[str]]:
        """The body rows of a table, as lists of cell texts."""
        return [
            [self.text_of(cell) for cell in self.find_all("th, td", within=row)]
            for row in self.find_all(f"{table_css} tbody tr")
        ]

    def scroll_to(self, element: str) -> None:
        """Bring an element to the middle of the window (before a screenshot)."""
        self._session(
            "POST",
            "/execute/sync",
            {
                "script": "arguments[0].scrollIntoView({block: 'center'});",
                "args": [{ELEMENT: element}],
            },
        )

    def click(self, css: str) -> None:
        self._session("POST", f"/element/{self.find(css)}/click", {})

    def type(self, css: str, text: str, clear: bool = True) -> None:
        """Type ``text`` into a field; for ``<input type=file>``, ``text`` is the absolute
        path of the file to choose."""
        element = self.find(css)
        if clear:
            with contextlib.suppress(WebDriverError):  # a file input cannot be cleared
                self._session("POST", f"/element/{element}/clear", {})
        self._session("POST", f"/element/{element}/value", {"text": text})

    def screenshot(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(self._session("GET", "/screenshot")))
        return path

    def wait_until(self, predicate, timeout: float, what: str, every: float = 0.25):
        """Call ``predicate()`` until it returns something true (WebDriver errors while a
        page loads count as not yet); its value, or TimeoutError naming ``what``."""
        deadline = time.monotonic() + timeout
        last_error = None
        while True:
            try:
                value = predicate()
                if value:
                    return value
            except WebDriverError as exc:
                last_error = exc
            if time.monotonic() >= deadline:
                raise TimeoutError(
                    f"{what}: not after {timeout:.0f} s"
                    + (f" (last error: {last_error})" if last_error else "")
                )
            time.sleep(every)

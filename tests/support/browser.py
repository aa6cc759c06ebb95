"""Headless Chromium for the web tests: a sealed browser driven over W3C WebDriver, and a local server.

The WebDriver protocol is JSON over HTTP, so `urllib` drives Debian's
`chromedriver` without Selenium (whose Selenium Manager may download drivers).
The browser is sealed: every host but 127.0.0.1 resolves to nothing, so
nothing leaves the machine (MediaPipe posts usage logs to a Google host).
"""

import base64
import functools
import http.server
import json
import pathlib
import re
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request

CHROMIUM = pathlib.Path("/usr/bin/chromium")
CHROMEDRIVER = pathlib.Path("/usr/bin/chromedriver")
CHROMIUM_FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu-sandbox",
    # WebGL in software: MediaPipe uploads every image as a texture, and the GPU delegate needs WebGL2.
    "--enable-unsafe-swiftshader",
    "--use-angle=swiftshader",
    "--ignore-gpu-blocklist",
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
    "--window-size=900,760",
    # The page's Camera button: Chromium's own test camera (a generated 640 x 480 picture), allowed without asking.
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
]
# MediaPipe posts usage logs to a Google host; sealed, that request fails and is not the page's error.
IGNORED_CONSOLE = ("play.googleapis.com", "ERR_NAME_NOT_RESOLVED", "favicon.ico")
# The wasm build writes TFLite's INFO lines to stderr, which Chromium logs as SEVERE.
INFO_LINE = re.compile(r'^\S+ \d+:\d+ "(INFO: |I\d{4} )')


def _free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@functools.lru_cache(maxsize=None)
def _handler(root):
    return functools.partial(_QuietHandler, directory=root)


class StaticServer:
    """`python -m http.server --bind 127.0.0.1` for one folder, in a thread."""

    def __init__(self, root):
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(str(root)))
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class Browser:
    """One headless Chromium session; `close()` ends Chromium and chromedriver."""

    def __init__(self, timeout=60):
        self.port = _free_port()
        self.profile = tempfile.TemporaryDirectory(prefix="chromium-profile-")
        self.driver = subprocess.Popen(
            [str(CHROMEDRIVER), f"--port={self.port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        self.base = f"http://127.0.0.1:{self.port}"
        self.session = None
        try:
            self._wait_for_driver(timeout)
            options = {"binary": str(CHROMIUM), "args": CHROMIUM_FLAGS + [f"--user-data-dir={self.profile.name}"]}
            capabilities = {"browserName": "chrome", "goog:chromeOptions": options, "goog:loggingPrefs": {"browser": "ALL"}}
            reply = self._call("POST", "/session", {"capabilities": {"alwaysMatch": capabilities}}, timeout=timeout)
            self.session = f"/session/{reply['sessionId']}"
        except BaseException:
            self.close()
            raise

    def _wait_for_driver(self, timeout):
        deadline = time.monotonic() + timeout
        while True:
            try:
                return self._call("GET", "/status", timeout=5)
            except (urllib.error.URLError, ConnectionError):
                if time.monotonic() > deadline or self.driver.poll() is not None:
                    raise RuntimeError(f"chromedriver did not start on port {self.port}")
                time.sleep(0.1)

    def _call(self, method, path, body=None, timeout=120):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base + path, data=data, method=method, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return json.loads(response.read())["value"]
        except urllib.error.HTTPError as error:
            value = json.loads(error.read() or b"{}").get("value", {})
            raise RuntimeError(f"WebDriver {method} {path}: {value.get('error')}: {value.get('message', '')[:500]}") from None

    def get(self, url):
        self._call("POST", f"{self.session}/url", {"url": url})

    def execute(self, script, *args):
        return self._call("POST", f"{self.session}/execute/sync", {"script": script, "args": list(args)})

    def wait_for(self, script, timeout=120, interval=0.2):
        """Runs `script` until it returns something truthy, and returns that."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.execute(script)
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"the page did not satisfy {script!r} in {timeout} s")
            time.sleep(interval)

    def upload(self, selector, path):
        """Picks a file in an <input type="file">, as a user does in the file dialog."""
        found = self._call("POST", f"{self.session}/element", {"using": "css selector", "value": selector})
        element = next(iter(found.values()))
        self._call("POST", f"{self.session}/element/{element}/value", {"text": str(path)})

    def click(self, selector):
        found = self._call("POST", f"{self.session}/element", {"using": "css selector", "value": selector})
        self._call("POST", f"{self.session}/element/{next(iter(found.values()))}/click", {})

    def drop(self, selector, url, name):
        """Drops the file at `url` (fetched by the page, a PNG) on an element, as a drag from the desktop does."""
        self.execute(
            """const [selector, url, name] = arguments;
            return fetch(url).then((response) => response.blob()).then((blob) => {
              const data = new DataTransfer();
              data.items.add(new File([blob], name, { type: "image/png" }));
              document.querySelector(selector).dispatchEvent(new DragEvent("drop", { dataTransfer: data, bubbles: true, cancelable: true }));
              return true;
            });""",
            selector, url, name,
        )

    def screenshot(self, path):
        pathlib.Path(path).write_bytes(base64.b64decode(self._call("GET", f"{self.session}/screenshot")))

    def console_errors(self):
        """The SEVERE console lines since the last call, less the sealed browser's usage-log failures."""
        entries = self._call("POST", f"{self.session}/se/log", {"type": "browser"})
        return [
            e["message"] for e in entries
            if e["level"] == "SEVERE" and not INFO_LINE.match(e["message"]) and not any(s in e["message"] for s in IGNORED_CONSOLE)
        ]

    def close(self):
        try:
            if self.session:
                self._call("DELETE", self.session, timeout=30)
        except (OSError, RuntimeError):
            pass
        finally:
            self.driver.terminate()
            try:
                self.driver.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.driver.kill()
                self.driver.wait()
            self.profile.cleanup()

"""Drive headless Chromium through its DevTools protocol over a pipe: no driver package, no downloaded browser.

``chromium --remote-debugging-pipe`` reads protocol commands (JSON, each ended by a NUL byte) on its file
descriptor 3 and writes answers and events on 4. That is all a check of a page needs: open a URL, evaluate
JavaScript, collect console errors, take a screenshot. Used by ``tests/test_js_runtimes.py`` and by
``python examples/train_in_browser/headless.py URL [--screenshot out.png]``.

Example:
    >>> find_chromium() is None or isinstance(find_chromium(), str)
    True
"""
from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import subprocess
import tempfile
import time
from typing import Any

__all__ = ["Browser", "find_chromium"]


def find_chromium() -> str | None:
    """The system's Chromium (Debian's ``chromium`` package) or Chrome, or ``None``."""
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


class Browser:
    """A headless Chromium with one page, driven over ``--remote-debugging-pipe``.

    Args:
        executable: the browser (default :func:`find_chromium`).
        width, height: the page's viewport.
    """

    def __init__(self, executable: str | None = None, width: int = 800, height: int = 900) -> None:
        executable = executable or find_chromium()
        if executable is None:
            raise FileNotFoundError("no chromium on PATH (Debian: apt-get install chromium)")
        self._profile = tempfile.TemporaryDirectory(prefix="onnxforge-chromium-")
        to_child, self._to_browser = os.pipe()
        self._from_browser, from_child = os.pipe()

        def fds() -> None:   # the child's fd 3 reads commands, fd 4 writes answers
            high = os.dup(to_child), os.dup(from_child)   # neither may be overwritten by the other's dup2
            os.dup2(high[0], 3)
            os.dup2(high[1], 4)

        args = [executable, "--headless=new", "--remote-debugging-pipe", "--no-first-run",
                "--no-default-browser-check", "--disable-gpu", "--disable-extensions", "--mute-audio",
                f"--user-data-dir={self._profile.name}", f"--window-size={width},{height}", "about:blank"]
        if os.geteuid() == 0:
            args.insert(1, "--no-sandbox")   # Chromium refuses to run as root with its sandbox
        self._log = tempfile.TemporaryFile()   # a file, not a pipe: a chatty browser must never block on it
        self.process = subprocess.Popen(args, preexec_fn=fds, pass_fds=(3, 4), stdout=subprocess.DEVNULL,
                                        stderr=self._log)
        os.close(to_child)
        os.close(from_child)
        self._buffer = b""
        self._next = 0
        self.console: list[str] = []
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self._session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        for domain in ("Page.enable", "Runtime.enable"):
            self.call(domain, session=True)
        self.call("Emulation.setDeviceMetricsOverride", session=True, width=width, height=height,
                  deviceScaleFactor=1, mobile=False)

    # -------------------------------------------------------------------------------- protocol
    def _read_message(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            if time.monotonic() > deadline:
                raise TimeoutError("Chromium did not answer in time")
            chunk = os.read(self._from_browser, 1 << 16)
            if not chunk:
                self._log.seek(0)
                err = self._log.read().decode(errors="replace")[-2000:]
                raise RuntimeError(f"Chromium closed its DevTools pipe (exit {self.process.poll()}): {err}")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def _note(self, event: dict[str, Any]) -> None:
        params = event.get("params", {})
        if event.get("method") == "Runtime.consoleAPICalled":
            text = " ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", []))
            self.console.append(f"console.{params.get('type')}: {text}")
        elif event.get("method") == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            self.console.append(f"exception: {details.get('exception', {}).get('description', details.get('text'))}")

    def call(self, method: str, session: bool = False, timeout: float = 60.0, **params: Any) -> dict[str, Any]:
        """Send one command and wait for its answer (events meanwhile go to ``console``)."""
        self._next += 1
        message: dict[str, Any] = {"id": self._next, "method": method, "params": params}
        if session:
            message["sessionId"] = self._session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            answer = self._read_message(deadline)
            if answer.get("id") == self._next:
                if "error" in answer:
                    raise RuntimeError(f"{method}: {answer['error']}")
                return answer.get("result", {})
            self._note(answer)

    # -------------------------------------------------------------------------------- page
    def goto(self, url: str) -> None:
        self.call("Page.navigate", session=True, url=url)

    def evaluate(self, expression: str) -> Any:
        """The JSON value of a JavaScript expression in the page."""
        result = self.call("Runtime.evaluate", session=True, expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result.get("result", {}).get("value")

    def wait_for(self, expression: str, timeout: float = 300.0, poll: float = 0.25) -> Any:
        """Poll until ``expression`` is truthy in the page; returns its value."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = self.evaluate(expression)
            if value:
                return value
            time.sleep(poll)
        raise TimeoutError(f"{expression} stayed falsy for {timeout} s; console: {self.console[-10:]}")

    def screenshot(self, path: str) -> None:
        data = self.call("Page.captureScreenshot", session=True, format="png")["data"]
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))

    def close(self) -> None:
        try:
            self.call("Browser.close", timeout=5)
        except Exception:   # already gone: nothing to close
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        for fd in (self._to_browser, self._from_browser):
            try:
                os.close(fd)
            except OSError:
                pass
        self._log.close()
        self._profile.cleanup()

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--wait", default="window.onnxforgeResult", help="JavaScript to wait for")
    parser.add_argument("--screenshot", help="PNG to write once it is truthy")
    parser.add_argument("--height", type=int, default=900)
    args = parser.parse_args()
    with Browser(height=args.height) as browser:
        browser.goto(args.url)
        print(json.dumps(browser.wait_for(args.wait)))
        if args.screenshot:
            browser.screenshot(args.screenshot)


if __name__ == "__main__":
    main()

"""``RemoteMonitor``: each epoch's logs posted to an HTTP server, with the standard library."""
from __future__ import annotations

__all__ = ["RemoteMonitor"]

import json
import urllib.error
import urllib.parse
import urllib.request
import warnings
from typing import Any

import numpy as np

from .callback import Callback


class RemoteMonitor(Callback):
    """Posts ``{"epoch": epoch, **logs}`` to ``root + path`` at the end of every epoch, as Keras does, through
    ``urllib`` (Keras needs ``requests``). With ``send_as_json`` the body is that JSON
    (``Content-Type: application/json``); otherwise it is a form whose ``field`` holds the JSON text. A server
    that cannot be reached gives a warning and training goes on; its answer, an HTTP error status included, is
    ignored (as Keras ignores it).

    Args:
        root: the server's root URL (``http://`` or ``https://``).
        path: the path under ``root`` the events are posted to.
        field: the form field holding the JSON (form posts only).
        headers: extra HTTP headers.
        send_as_json: post the JSON itself rather than a form.
        timeout: seconds to wait for the server (Keras waits without limit; a stalled server would stall ``fit``).

    Example:
        >>> monitor = RemoteMonitor(root="http://localhost:9000", send_as_json=True)
        >>> monitor.url
        'http://localhost:9000/publish/epoch/end/'
    """

    def __init__(self, root: str = "http://localhost:9000", path: str = "/publish/epoch/end/", field: str = "data",
                 headers: dict[str, str] | None = None, send_as_json: bool = False, timeout: float | None = 10.0):
        super().__init__()
        scheme = urllib.parse.urlsplit(str(root) + str(path)).scheme
        if scheme not in ("http", "https"):
            raise ValueError("RemoteMonitor posts over HTTP: `root` must start with http:// or https://. "
                             f"Received: root={root!r}")
        if headers is not None and not isinstance(headers, dict):
            raise ValueError(f"Argument `headers` must be a dict of strings. Received: headers={headers!r}")
        self.root = root
        self.path = path
        self.field = field
        self.headers = headers
        self.send_as_json = send_as_json
        self.timeout = timeout

    @property
    def url(self) -> str:
        return self.root + self.path

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        send: dict[str, Any] = {"epoch": epoch}
        for key, value in (logs or {}).items():
            # numpy scalars and 0-d arrays are not JSON types: their Python value is sent
            send[key] = value.item() if isinstance(value, (np.ndarray, np.generic)) else value
        text = json.dumps(send)
        if self.send_as_json:
            body, kind = text.encode("utf-8"), "application/json"
        else:
            body, kind = urllib.parse.urlencode({self.field: text}).encode("ascii"), \
                "application/x-www-form-urlencoded"
        request = urllib.request.Request(self.url, data=body, method="POST",
                                         headers={"Content-Type": kind, **(self.headers or {})})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                response.read()
        except urllib.error.HTTPError:   # the server got the post; Keras does not look at the status either
            return
        except (urllib.error.URLError, OSError, ValueError):
            warnings.warn(f"Could not reach RemoteMonitor root server at {self.root}", stacklevel=2)

"""What keeps the HTTP service alive under real traffic: connection tracking with deadlines, a memory
budget for request bodies, and the Host check against DNS rebinding. Standard library only.

* :class:`Connections` knows every open connection and what it is doing. A connection may spend at most
  ``read_timeout_s`` receiving its request (a client dripping one byte every few seconds is cut off at
  the deadline, whatever the per-``recv`` timeout) and ``write_timeout_s`` receiving the answer; a
  reaper thread shuts the socket down when a deadline passes. On shutdown, connections still sending
  their request are cut at once and those being answered get a bounded drain time.
* :class:`ByteBudget` bounds the request bodies held at once (a JSON body costs ~20x its size once
  parsed); a request that does not fit is answered 503 instead of queued.
* :func:`refuse` answers a connection over the cap with 503 from the accept loop, and :func:`linger_close`
  closes a socket whose request was answered unread without resetting it.
* :func:`host_allowed` implements the ``Host`` check: a web page that rebinds its own DNS name to
  127.0.0.1 can make a browser send requests here, but the browser still sends that name as ``Host``.

Example:
    >>> host_allowed("127.0.0.1:8000", ["localhost"]), host_allowed("evil.example:8000", ["localhost"])
    (True, False)
"""
from __future__ import annotations

__all__ = ["Connections", "ByteBudget", "host_allowed", "host_name", "linger_close", "refuse"]

import ipaddress
import json
import socket
import threading
import time
from collections.abc import Iterable

_CHUNK = 1 << 16


class ByteBudget:
    """A counter of bytes in use with a ceiling; :meth:`take` refuses instead of waiting.

    Example:
        >>> b = ByteBudget(100)
        >>> b.take(60), b.take(60), b.release(60), b.take(60)
        (True, False, None, True)
    """

    def __init__(self, limit: int) -> None:
        self.limit = int(limit)
        self.used = 0
        self._lock = threading.Lock()

    def take(self, n: int) -> bool:
        with self._lock:
            if self.used + n > self.limit:
                return False
            self.used += n
            return True

    def release(self, n: int) -> None:
        with self._lock:
            self.used = max(0, self.used - n)


class Connections:
    """Open connections, their phase (``reading`` / ``running`` / ``writing``) and deadlines.

    Args:
        limit: the most connections handled at once (the rest get 503 from the accept loop).
        read_timeout_s: how long a connection may take to send its whole request.
        write_timeout_s: how long a connection may take to receive its whole answer.
    """

    def __init__(self, limit: int, read_timeout_s: float, write_timeout_s: float) -> None:
        self.limit = limit
        self.read_timeout_s = read_timeout_s
        self.write_timeout_s = write_timeout_s
        self._lock = threading.Condition()
        self._open: dict[socket.socket, tuple[str, float]] = {}
        self._stopping = False
        self._reaper = threading.Thread(target=self._reap, name="onnxforge-reaper", daemon=True)
        self._reaper.start()

    def __len__(self) -> int:
        with self._lock:
            return len(self._open)

    def admit(self, sock: socket.socket) -> bool:
        """Register a new connection in its reading phase; False if the limit is reached."""
        with self._lock:
            if self._stopping or len(self._open) >= self.limit:
                return False
            self._open[sock] = ("reading", time.monotonic() + self.read_timeout_s)
            self._lock.notify()
            return True

    def phase(self, sock: socket.socket, phase: str) -> None:
        """``running`` (no deadline: the model run has its own timeout) or ``writing``."""
        with self._lock:
            if sock in self._open:
                deadline = time.monotonic() + self.write_timeout_s if phase == "writing" else float("inf")
                self._open[sock] = (phase, deadline)
                self._lock.notify()

    def leave(self, sock: socket.socket) -> None:
        with self._lock:
            self._open.pop(sock, None)
            self._lock.notify_all()

    def _cut(self, sock: socket.socket) -> None:
        try:
            sock.shutdown(socket.SHUT_RDWR)   # the handler's blocked recv/send returns at once
        except OSError:
            pass

    def _reap(self) -> None:
        with self._lock:
            while not (self._stopping and not self._open):
                now = time.monotonic()
                for sock, (_, deadline) in list(self._open.items()):
                    if deadline <= now:
                        self._cut(sock)
                        self._open[sock] = ("cut", float("inf"))
                upcoming = [d for _, d in self._open.values() if d != float("inf")]
                self._lock.wait(min(max(min(upcoming) - now, 0.01), 1.0) if upcoming else 1.0)

    def drain(self, timeout_s: float) -> None:
        """Shutdown: cut connections still reading now, give the others ``timeout_s`` to finish, then cut."""
        with self._lock:
            self._stopping = True
            for sock, (phase, _) in list(self._open.items()):
                if phase == "reading":
                    self._cut(sock)
            end = time.monotonic() + timeout_s
            while self._open and time.monotonic() < end:
                self._lock.wait(0.05)
            for sock in list(self._open):
                self._cut(sock)
            self._lock.notify_all()


_lingering = threading.BoundedSemaphore(32)   # refused sockets drained at once; past this, closed outright


def linger_close(sock: socket.socket, max_bytes: int, seconds: float) -> None:
    """Half-close, drain at most ``max_bytes`` for at most ``seconds``, close. Closing a socket with unread
    input makes the kernel send a reset, so a client still sending its request would get a broken pipe
    instead of the answer already written for it."""
    try:
        sock.shutdown(socket.SHUT_WR)
        deadline = time.monotonic() + seconds
        drained = 0
        while drained < max_bytes:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            sock.settimeout(left)
            chunk = sock.recv(_CHUNK)
            if not chunk:
                break
            drained += len(chunk)
    except OSError:
        pass
    finally:
        sock.close()


def refuse(sock: socket.socket) -> None:
    body = json.dumps({"error": "Too many connections; retry later"}).encode()
    head = (f"HTTP/1.0 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            "Retry-After: 1\r\nConnection: close\r\n\r\n").encode()
    try:
        sock.settimeout(0.5)
        sock.sendall(head + body)
    except OSError:
        sock.close()
        return
    # Called from the accept loop: the lingering close runs beside it, a bounded number at a time.
    if not _lingering.acquire(blocking=False):
        sock.close()
        return

    def linger() -> None:
        try:
            linger_close(sock, _CHUNK, 0.5)
        finally:
            _lingering.release()

    threading.Thread(target=linger, name="onnxforge-refused", daemon=True).start()


def host_name(header: str) -> str:
    """The host part of a ``Host`` header, lowercased, without port or brackets (``[::1]:80`` -> ``::1``)."""
    text = header.strip().lower()
    if text.startswith("["):
        return text[1:text.find("]")] if "]" in text else text
    if text.count(":") == 1:
        text = text.split(":", 1)[0]
    return text.rstrip(".")


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def host_allowed(header: str | None, allowed: Iterable[str]) -> bool:
    """Whether a request's ``Host`` header may be served.

    Allowed: no header (HTTP/1.0 clients; browsers always send one), an IP address literal (DNS rebinding
    needs a name), a name in ``allowed`` (``".example.com"`` also allows its subdomains, ``"*"`` allows
    everything). Ports are ignored.
    """
    if header is None:
        return True
    name = host_name(header)
    if _is_ip(name):
        return True
    for entry in allowed:
        entry = entry.strip().lower().rstrip(".")
        if entry == "*" or entry == name or (entry.startswith(".") and (name.endswith(entry) or name == entry[1:])):
            return True
    return False

"""How the coordinator reaches silos, and the wire log of everything that crossed.

`HttpSilo` posts JSON to a silo's FastAPI endpoints (`segwise.federated.app`) with the
standard library's HTTP client; `LocalSilo` hands the same bytes to an in-process
`Silo` (the central option and fast tests). Both write every request and response
body, exactly as sent and received, to the `WireLog`: one JSON line per message with
its direction, silo, path, HTTP status, size and SHA-256 of the bytes, and the body
itself. A test (or an auditor) can therefore check that nothing but aggregates left
a silo.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from segwise.errors import InputError, SegwiseError

__all__ = ["WireLog", "HttpSilo", "LocalSilo", "SiloUnavailable", "SiloRefused", "read_wire_log"]


class SiloUnavailable(SegwiseError, RuntimeError):
    """A silo did not answer (connection refused or reset, timeout, server error)."""


class SiloRefused(InputError):
    """A silo answered that the request is wrong (HTTP 4xx); retrying will not help."""


class WireLog:
    """Appends one JSON line per message to ``path`` (thread-safe); ``path=None`` keeps them in memory."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else None
        self._lock = threading.Lock()
        self._seq = 0
        self.entries: list[dict[str, Any]] = [] if path is None else []
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text("")

    def record(self, *, direction: str, silo: str, path: str, raw: bytes, status: int | None = None) -> None:
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", errors="replace")
        with self._lock:
            self._seq += 1
            entry = {
                "seq": self._seq, "time": round(time.time(), 6), "direction": direction, "silo": silo,
                "path": path, "status": status, "bytes": len(raw), "sha256": hashlib.sha256(raw).hexdigest(),
                "body": body,
            }
            if self.path is None:
                self.entries.append(entry)
            else:
                with self.path.open("a", encoding="utf-8") as fh:
                    fh.write(json.dumps(entry, allow_nan=False) + "\n")

    def read(self) -> list[dict[str, Any]]:
        """Every entry so far."""
        return read_wire_log(self.path) if self.path is not None else list(self.entries)


def read_wire_log(path: str | Path) -> list[dict[str, Any]]:
    """The entries of a ``wire_log.jsonl`` file."""
    with Path(path).open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


class _Client:
    name: str
    wire_log: WireLog

    def _send(self, path: str, raw: bytes | None) -> tuple[int, bytes]:  # pragma: no cover - abstract
        raise NotImplementedError

    def call(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        """Send ``body`` to ``path`` and return the parsed answer (logging both)."""
        raw = json.dumps(body, allow_nan=False).encode() if body is not None else None
        self.wire_log.record(direction="request", silo=self.name, path=path, raw=raw or b"")
        status, answer = self._send(path, raw)
        self.wire_log.record(direction="response", silo=self.name, path=path, raw=answer, status=status)
        if status >= 500:
            raise SiloUnavailable(f"silo {self.name} failed on {path} (HTTP {status})")
        try:
            data = json.loads(answer)
        except ValueError:
            raise SiloUnavailable(f"silo {self.name} sent an unreadable answer to {path}") from None
        if status >= 400:
            raise SiloRefused(f"silo {self.name} refused {path}: {data.get('error', data)}")
        return data


class HttpSilo(_Client):
    """A silo process reached over HTTP (``url`` like ``http://127.0.0.1:8765``)."""

    def __init__(self, url: str, wire_log: WireLog, *, name: str | None = None, timeout: float = 120.0) -> None:
        self.url = url.rstrip("/")
        self.name = name or self.url
        self.wire_log = wire_log
        self.timeout = timeout

    def _send(self, path: str, raw: bytes | None) -> tuple[int, bytes]:
        request = urllib.request.Request(
            self.url + path, data=raw, method="POST" if raw is not None else "GET",
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise SiloUnavailable(f"silo {self.name} unreachable on {path}: {reason}") from None


class LocalSilo(_Client):
    """A `Silo` in this process, reached through the same JSON bytes as over HTTP."""

    def __init__(self, silo, wire_log: WireLog) -> None:
        self.silo = silo
        self.name = silo.name
        self.wire_log = wire_log

    def _send(self, path: str, raw: bytes | None) -> tuple[int, bytes]:
        from segwise.federated.routes import BadRequest, dispatch

        try:
            return 200, dispatch(self.silo, path, raw or b"")
        except BadRequest as exc:
            return exc.status, json.dumps({"error": str(exc)}).encode()

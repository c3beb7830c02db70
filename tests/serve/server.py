"""Starting the real ``segwise serve`` (uvicorn) in a subprocess on a free 127.0.0.1 port.

Tests talk to it over HTTP with httpx, as a client would. The server's output goes
to a log file (a pipe nobody reads could fill up and stall it); `Server.log` shows
it, and a failed start reports it.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

SEGWISE = Path(sys.executable).parent / "segwise"

#: A start imports segwise, FastAPI and the model: a few seconds, more on a busy machine.
START_SECONDS = 120


def run_coroutine(coroutine):
    """``asyncio.run`` in a thread of its own: a session fixture of this worker (the report
    tests' Playwright browser) may already run an event loop in the main thread."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def server_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONWARNINGS", None)
    env.pop("SEGWISE_API_TOKEN", None)
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    env["OMP_NUM_THREADS"] = "1"
    env.update(extra)
    return env


class Server:
    """A running ``segwise serve`` process.

    Parameters
    ----------
    args : list
        Arguments after ``segwise serve`` (the model path first); ``--port`` is added.
    log_path : Path
        Where the server's stdout and stderr go.
    env : dict, optional
        Extra environment variables.
    command : list, optional
        What to run instead of ``segwise serve`` (e.g. a launcher script and its
        ``serve`` argument); ``args`` and ``--port`` follow it.
    """

    def __init__(self, args: list, log_path: Path, env: dict[str, str] | None = None,
                 command: list[str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = Path(log_path)
        argv = [*(command or [str(SEGWISE), "serve"]), *map(str, args), "--port", str(self.port)]
        self._log = open(self.log_path, "w")
        self.process = subprocess.Popen(argv, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                        env=server_env(**(env or {})))

    @property
    def log(self) -> str:
        if not self._log.closed:  # still readable after stop(), for failure messages
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout: float = START_SECONDS) -> "Server":
        """Wait until ``/readyz`` answers 200 (fails with the server's log otherwise)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"segwise serve exited with {self.process.returncode}:\n{self.log}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        self.stop()
        raise AssertionError(f"segwise serve did not become ready in {timeout} s:\n{self.log}")

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60)

    def signal(self, sig: int) -> None:
        self.process.send_signal(sig)

    def stop(self) -> int:
        """SIGTERM (graceful shutdown), then wait; returns the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
        return self.process.returncode


def wait_for(condition, timeout: float = 60, interval: float = 0.2, what: str = "condition"):
    """Poll ``condition()`` until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")

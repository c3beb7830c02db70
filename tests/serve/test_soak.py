"""A bounded soak of ``segwise serve``: mixed traffic at 64 connections with a SIGHUP reload midway.

For ``SEGWISE_SOAK_SECONDS`` (default 120) 64 concurrent clients send single
assignments, batches of 50 and malformed bodies to one server; in the middle the
model file is replaced and the server gets SIGHUP. Every valid request must get 200
with an assignment, every malformed one 422: no 5xx, no connection failure, no
timeout. The server's resident memory after the soak may exceed what it was after
warm-up by at most `MAX_GROWTH_MB`.
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import signal
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from .server import Server, run_coroutine, wait_for

CONNECTIONS = 64
SECONDS = float(os.environ.get("SEGWISE_SOAK_SECONDS", "120"))
#: Allocator slack and caches; a leak per request would grow with the ~10^4 requests sent.
MAX_GROWTH_MB = 60

MALFORMED = [
    b"{not json",
    b'{"customer_id": "x"}',
    b'{"customer_id": "x", "features": {"recency_days": "soon"}}',
    b'{"customers": []}',
    b"[]",
]


def _rss_mb(pid: int) -> float:
    """Resident memory of a process and its children, in MB (Linux /proc)."""
    total = 0.0
    pids = [pid] + [int(p) for p in os.listdir("/proc") if p.isdigit() and _ppid(int(p)) == pid]
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) / 1024
        except OSError:
            pass
    return total


def _ppid(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


async def _client(url: str, deadline: float, single: list[dict], seed: int, outcomes: Counter, problems: list):
    rng = random.Random(seed)
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as http:
        while time.monotonic() < deadline:
            kind = rng.choices(["single", "batch", "malformed"], weights=[6, 2, 2])[0]
            try:
                if kind == "single":
                    response = await http.post("/v1/assign", json=rng.choice(single))
                elif kind == "batch":
                    start = rng.randrange(0, len(single) - 50)
                    response = await http.post("/v1/assign/batch", json={"customers": single[start:start + 50]})
                else:
                    response = await http.post("/v1/assign", content=rng.choice(MALFORMED),
                                               headers={"content-type": "application/json"})
            except httpx.HTTPError as exc:  # connection reset, timeout ...
                problems.append(f"{kind}: {type(exc).__name__}: {exc}")
                continue
            expected = 422 if kind == "malformed" else 200
            outcomes[(kind, response.status_code)] += 1
            if response.status_code != expected:
                problems.append(f"{kind}: {response.status_code} {response.text[:200]}")
            elif kind == "batch" and len(response.json()["assignments"]) != 50:
                problems.append("batch: wrong number of assignments")


@pytest.mark.slow
def test_mixed_traffic_with_a_reload_has_no_failure_and_bounded_memory(model_a, model_b, tmp_path):
    assert model_a.model.input_columns == model_b.model.input_columns  # both answer the same requests
    served = tmp_path / "model.segwise"
    shutil.copyfile(model_a.path, served)
    server = Server([served], tmp_path / "server.log").wait_ready()
    try:
        single = model_a.feature_rows(len(model_a.features))
        with httpx.Client(base_url=server.url, timeout=60) as http:
            for item in single[:200]:  # warm-up
                assert http.post("/v1/assign", json=item).status_code == 200
        warm = _rss_mb(server.process.pid)
        outcomes: Counter = Counter()
        problems: list[str] = []

        async def soak():
            deadline = time.monotonic() + SECONDS
            clients = [asyncio.create_task(_client(server.url, deadline, single, i, outcomes, problems))
                       for i in range(CONNECTIONS)]
            await asyncio.sleep(SECONDS / 2)
            staging = tmp_path / "next.segwise"
            shutil.copyfile(model_b.path, staging)
            os.replace(staging, served)
            server.signal(signal.SIGHUP)
            await asyncio.gather(*clients)

        run_coroutine(soak())
        with httpx.Client(base_url=server.url, timeout=60) as http:
            version = wait_for(lambda: http.get("/v1/model").json()["model_version"] == model_b.model.file_sha256,
                               what="the SIGHUP reload")
        assert version
        after = _rss_mb(server.process.pid)
        assert problems == [], (len(problems), problems[:10], dict(outcomes))
        total = sum(outcomes.values())
        assert total >= CONNECTIONS * 5, dict(outcomes)
        assert all(status < 500 for _, status in outcomes), dict(outcomes)
        assert after - warm <= MAX_GROWTH_MB, f"memory grew from {warm:.0f} MB to {after:.0f} MB over {total} requests"
        print(f"soak: {total} requests in {SECONDS:.0f} s at {CONNECTIONS} connections, {dict(outcomes)}; "
              f"RSS {warm:.0f} -> {after:.0f} MB")
    finally:
        server.stop()

"""Model files carrying a live pickle payload are refused before anything in them runs.

The payload's ``__reduce__`` calls ``open(path, "w")``: unpickling it creates a file
(shown first, so the payload is known to be live). Put into a model file in every
place a pickle could hide (the whole file, an object array with a valid SHA-256, a
raw pickle listed in the manifest), it is loaded through `segwise.load_model`,
``segwise assign`` and ``segwise serve`` (at start and on reload): each refuses, and
no file appears.
"""

from __future__ import annotations

import hashlib
import io
import json
import pickle
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import httpx
import numpy as np
import pytest

import segwise
from segwise.errors import ModelError

from .e2e.conftest import _env
from .serve.server import Server

SEGWISE = Path(sys.executable).parent / "segwise"


class Tripwire:
    """Unpickling this creates (truncates) ``path``."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def _npy_of(obj) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.array([obj], dtype=object), allow_pickle=True)
    return buffer.getvalue()


def _with_member(source: Path, target: Path, name: str, data: bytes) -> Path:
    """``source`` with member ``name`` set to ``data`` and its SHA-256 listed in the manifest."""
    with zipfile.ZipFile(source) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    members[name] = data
    manifest = json.loads(members["manifest.json"])
    manifest["members"][name] = hashlib.sha256(data).hexdigest()
    members["manifest.json"] = json.dumps(manifest).encode()
    with zipfile.ZipFile(target, "w") as zf:
        for member, payload in members.items():
            zf.writestr(member, payload)
    return target


@pytest.fixture(scope="module")
def good(tmp_path_factory, small_population):
    root = tmp_path_factory.mktemp("payloads")
    orders = root / "orders.parquet"
    import pyarrow.parquet as pq

    pq.write_table(small_population.orders, orders)
    path = root / "model.segwise"
    segwise.segment(small_population.orders, n_segments=3, random_state=0).model.save(path)
    return path, orders


def _cases(good_path: Path, root: Path) -> dict[str, tuple[Path, Path]]:
    """Case name -> (model file with a payload, the file its payload would create)."""
    cases = {}
    trip = root / "trip-whole-file"
    whole = root / "whole.segwise"
    whole.write_bytes(pickle.dumps(Tripwire(trip)))
    cases["the whole file is a pickle"] = (whole, trip)
    with zipfile.ZipFile(good_path) as zf:
        centers = next(n for n in zf.namelist() if n.endswith("cluster_centers.npy"))
    trip = root / "trip-object-array"
    cases["an object array with a valid SHA-256"] = (
        _with_member(good_path, root / "array.segwise", centers, _npy_of(Tripwire(trip))), trip)
    trip = root / "trip-raw-member"
    cases["a raw pickle listed in the manifest"] = (
        _with_member(good_path, root / "member.segwise", "arrays/extra.npy", pickle.dumps(Tripwire(trip))), trip)
    return cases


def test_the_payload_is_live(tmp_path):
    trip = tmp_path / "created"
    pickle.loads(pickle.dumps(Tripwire(trip))).close()
    assert trip.exists()
    trip.unlink()
    np.load(io.BytesIO(_npy_of(Tripwire(trip))), allow_pickle=True)[0].close()
    assert trip.exists()


def test_load_model_refuses_every_payload_and_runs_none(good, tmp_path):
    for what, (model, trip) in _cases(good[0], tmp_path).items():
        with pytest.raises(ModelError):
            segwise.load_model(model)
        assert not trip.exists(), what


def test_segwise_assign_refuses_every_payload_and_runs_none(good, tmp_path):
    _, orders = good
    for what, (model, trip) in _cases(good[0], tmp_path).items():
        result = subprocess.run([str(SEGWISE), "assign", str(model), str(orders), "--out", str(tmp_path / "a.csv")],
                                cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=180)
        assert result.returncode == 2 and "Traceback" not in result.stderr, (what, result.stderr)
        assert model.name in result.stderr, (what, result.stderr)
        assert not trip.exists() and not (tmp_path / "a.csv").exists(), what


def test_segwise_serve_refuses_every_payload_at_start_and_on_reload(good, tmp_path):
    cases = _cases(good[0], tmp_path)
    for what, (model, trip) in cases.items():
        result = subprocess.run([str(SEGWISE), "serve", str(model), "--port", "0"], cwd=tmp_path, env=_env(),
                                capture_output=True, text=True, timeout=180)
        assert result.returncode == 2 and "Traceback" not in result.stderr, (what, result.stderr)
        assert not trip.exists(), what
    served = tmp_path / "served.segwise"
    shutil.copyfile(good[0], served)
    server = Server([served], tmp_path / "server.log").wait_ready()
    try:
        for what, (model, trip) in cases.items():
            shutil.copyfile(model, served)
            response = httpx.post(f"{server.url}/v1/admin/reload", timeout=60)
            assert response.status_code == 409, (what, response.text)
            assert not trip.exists(), what
            assert httpx.get(f"{server.url}/readyz", timeout=10).status_code == 200
    finally:
        server.stop()

"""The model file: a zip of JSON and ``.npy`` arrays, loaded without running code.

Layout of ``model.segwise``::

    manifest.json        format name and version, segwise version, creation time,
                         and the SHA-256 of every other member
    model.json           feature definitions, preparation parameters, method
                         parameters, segment ids, names, profiles, metadata
    arrays/<name>.npy    learned arrays (centroids, scaler statistics, ...)

Loading checks, before anything is used: member names are plain relative paths
listed in the manifest; sizes stay under `MAX_MEMBER_BYTES` / `MAX_TOTAL_BYTES`
(and the compression ratio is sane: no zip bombs); every member's SHA-256 matches;
the format's major version is one this segwise reads. Arrays are read with
``numpy.load(..., allow_pickle=False)`` and JSON with the standard parser, so a
model file can never execute code.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import posixpath
import signal
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from segwise.errors import ModelError

__all__ = ["FORMAT_NAME", "FORMAT_VERSION", "write_model_file", "read_model_file", "atomic_write_bytes"]

FORMAT_NAME = "segwise-model"
FORMAT_VERSION = "1.0"
MAX_MEMBER_BYTES = 2 * 1024**3
MAX_TOTAL_BYTES = 4 * 1024**3
MAX_COMPRESSION_RATIO = 200
MAX_MEMBERS = 10_000


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def saving_step(step: str) -> None:
    """Test hook marking a step of saving (a write or a rename); does nothing in normal use.

    With ``SEGWISE_TEST_STEPS_LOG`` set, the step's name is appended to that file; with
    ``SEGWISE_TEST_KILL_AT`` equal to the step's name, the process stops itself there
    with SIGKILL. tests/test_kill_steps.py kills a save at every step this way and
    checks that what is left is always whole.
    """
    log = os.environ.get("SEGWISE_TEST_STEPS_LOG")
    if log:
        with open(log, "a", encoding="utf-8") as fh:
            fh.write(step + "\n")
    if os.environ.get("SEGWISE_TEST_KILL_AT") == step:
        os.kill(os.getpid(), signal.SIGKILL)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path``, fsync, then rename into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644 & ~_umask())
        saving_step(f"atomic-written:{path.name}")
        os.replace(tmp, path)
        saving_step(f"atomic-renamed:{path.name}")
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def _npy_bytes(array: np.ndarray) -> bytes:
    array = np.asarray(array)
    if array.dtype == object:
        raise ModelError("object arrays cannot be stored in a model file (they would need pickle)")
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def model_bytes(document: dict[str, Any], arrays: dict[str, np.ndarray], *, segwise_version: str, created_at: str) -> bytes:
    """Serialise a model document and its arrays into the zip format."""
    members: dict[str, bytes] = {"model.json": json.dumps(document, indent=1, sort_keys=True, allow_nan=False).encode()}
    for name, array in sorted(arrays.items()):
        members[f"arrays/{name}.npy"] = _npy_bytes(array)
    manifest = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "segwise_version": segwise_version,
        "created_at": created_at,
        "members": {name: _sha256(data) for name, data in members.items()},
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("manifest.json", json.dumps(manifest, indent=1, sort_keys=True))
        for name, data in members.items():
            zf.writestr(name, data)
    return buffer.getvalue()


def write_model_file(path: str | os.PathLike, document: dict[str, Any], arrays: dict[str, np.ndarray], *,
                     segwise_version: str, created_at: str) -> str:
    """Write a model file atomically; returns its SHA-256."""
    data = model_bytes(document, arrays, segwise_version=segwise_version, created_at=created_at)
    atomic_write_bytes(path, data)
    return _sha256(data)


def _safe_member(name: str) -> bool:
    if not name or name.startswith(("/", "\\")) or "\\" in name or ":" in name:
        return False
    normal = posixpath.normpath(name)
    return normal == name and not normal.startswith("..") and "/../" not in f"/{normal}/"


def read_model_file(path: str | os.PathLike) -> tuple[dict[str, Any], dict[str, np.ndarray], dict[str, Any]]:
    """Read and verify a model file: returns (document, arrays, manifest).

    Raises
    ------
    ModelError
        Not a segwise model, unsafe or tampered content, or an unsupported version.
    """
    label = str(path)
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        raise ModelError(f"{label}: no such model file") from None
    file_hash = _sha256(raw)
    try:
        zf = zipfile.ZipFile(io.BytesIO(raw))
    except zipfile.BadZipFile:
        raise ModelError(f"{label}: not a segwise model file (not a zip archive)") from None
    with zf:
        infos = zf.infolist()
        if len(infos) > MAX_MEMBERS:
            raise ModelError(f"{label}: too many members ({len(infos)}); refusing to load")
        total = 0
        for info in infos:
            if not _safe_member(info.filename) or info.is_dir():
                raise ModelError(f"{label}: unsafe member name {info.filename!r}; refusing to load")
            if info.file_size > MAX_MEMBER_BYTES:
                raise ModelError(f"{label}: member {info.filename!r} is too large ({info.file_size} bytes)")
            if info.compress_size and info.file_size / max(info.compress_size, 1) > MAX_COMPRESSION_RATIO and info.file_size > 10 * 1024**2:
                raise ModelError(f"{label}: member {info.filename!r} has a suspicious compression ratio (zip bomb?)")
            total += info.file_size
        if total > MAX_TOTAL_BYTES:
            raise ModelError(f"{label}: uncompressed size {total} bytes exceeds the limit; refusing to load")
        names = {info.filename for info in infos}
        if "manifest.json" not in names:
            raise ModelError(f"{label}: not a segwise model file (no manifest.json)")
        try:
            manifest = json.loads(zf.read("manifest.json"))
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise ModelError(f"{label}: manifest.json is not valid JSON") from None
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
            raise ModelError(f"{label}: not a segwise model file (format is {manifest.get('format')!r})")
        version = str(manifest.get("format_version", ""))
        major = version.split(".")[0]
        if major != FORMAT_VERSION.split(".")[0]:
            raise ModelError(
                f"{label}: model format version {version} is not supported by this segwise "
                f"(reads {FORMAT_VERSION.split('.')[0]}.x); upgrade segwise or retrain the model"
            )
        listed = manifest.get("members", {})
        extra = names - set(listed) - {"manifest.json"}
        if extra:
            raise ModelError(f"{label}: members not listed in the manifest: {', '.join(sorted(extra))}")
        missing = set(listed) - names
        if missing:
            raise ModelError(f"{label}: members listed in the manifest are missing: {', '.join(sorted(missing))}")
        contents = {}
        for name, expected in listed.items():
            data = zf.read(name)
            if _sha256(data) != expected:
                raise ModelError(f"{label}: member {name!r} does not match its SHA-256 in the manifest (tampered or corrupt)")
            contents[name] = data
    if "model.json" not in contents:
        raise ModelError(f"{label}: no model.json")
    document = json.loads(contents.pop("model.json"))
    arrays = {}
    for name, data in contents.items():
        if not (name.startswith("arrays/") and name.endswith(".npy")):
            raise ModelError(f"{label}: unexpected member {name!r}")
        try:
            arrays[name[len("arrays/"):-len(".npy")]] = np.load(io.BytesIO(data), allow_pickle=False)
        except ValueError as exc:
            raise ModelError(f"{label}: array {name!r} cannot be loaded safely ({exc})") from None
    manifest["file_sha256"] = file_hash
    return document, arrays, manifest

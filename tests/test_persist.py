"""The model file: round trip, and refusal of everything unsafe or tampered."""

import hashlib
import io
import json
import pickle
import zipfile

import numpy as np
import pandas as pd
import pytest

import segwise
from segwise.errors import ModelError
from segwise.model import SegmentationModel
from segwise.persist import FORMAT_VERSION, read_model_file


@pytest.fixture(scope="module")
def saved(tmp_path_factory, small_population):
    result = segwise.segment(small_population.orders, random_state=3)
    path = tmp_path_factory.mktemp("model") / "model.segwise"
    result.model.save(path)
    return result, path


def rewrite(path, target, edit):
    """Copy the zip at ``path`` to ``target`` with ``edit(members) -> members``."""
    with zipfile.ZipFile(path) as zf:
        members = {name: zf.read(name) for name in zf.namelist()}
    members = edit(members)
    with zipfile.ZipFile(target, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return target


def test_round_trip_reproduces_predictions_exactly(saved):
    result, path = saved
    model = segwise.load_model(path)
    again = model.assign_features(result.features)
    assert again["segment_id"].tolist() == result.assignments["segment_id"].tolist()
    assert np.array_equal(again["confidence"].to_numpy(), result.assignments["confidence"].to_numpy())
    assert model.names == result.model.names
    assert model.metadata["as_of"] == str(result.features.as_of)
    assert len(model.file_sha256) == 64


def test_layout_is_json_and_npy_with_hashes(saved):
    _, path = saved
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        manifest = json.loads(zf.read("manifest.json"))
    assert names[0] == "manifest.json" and "model.json" in names
    assert all(n.endswith(".npy") for n in names if n.startswith("arrays/"))
    assert manifest["format"] == "segwise-model" and manifest["format_version"] == FORMAT_VERSION
    assert set(manifest["members"]) == set(names) - {"manifest.json"}


def test_tampered_array_is_refused(saved, tmp_path):
    _, path = saved

    def edit(members):
        name = next(n for n in members if n.endswith("cluster_centers.npy"))
        buffer = io.BytesIO()
        np.save(buffer, np.load(io.BytesIO(members[name])) + 1.0)
        members[name] = buffer.getvalue()
        return members

    with pytest.raises(ModelError, match="does not match its SHA-256 in the manifest"):
        SegmentationModel.load(rewrite(path, tmp_path / "t.segwise", edit))


def test_pickle_payload_is_refused_even_with_a_valid_hash(saved, tmp_path):
    _, path = saved

    def edit(members):
        name = next(n for n in members if n.endswith("cluster_centers.npy"))
        buffer = io.BytesIO()
        np.save(buffer, np.array([{"evil": 1}], dtype=object), allow_pickle=True)
        members[name] = buffer.getvalue()
        manifest = json.loads(members["manifest.json"])
        import hashlib

        manifest["members"][name] = hashlib.sha256(members[name]).hexdigest()
        members["manifest.json"] = json.dumps(manifest).encode()
        return members

    with pytest.raises(ModelError, match="cannot be loaded safely"):
        read_model_file(rewrite(path, tmp_path / "p.segwise", edit))
    plain_pickle = tmp_path / "model.pkl"
    plain_pickle.write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(ModelError, match="not a zip archive"):
        read_model_file(plain_pickle)


def test_path_traversal_and_unlisted_members_are_refused(saved, tmp_path):
    _, path = saved
    with pytest.raises(ModelError, match=r"unsafe member name '\.\./evil\.npy'"):
        read_model_file(rewrite(path, tmp_path / "a.segwise", lambda m: {**m, "../evil.npy": b"x"}))
    with pytest.raises(ModelError, match="members not listed in the manifest: extra.json"):
        read_model_file(rewrite(path, tmp_path / "b.segwise", lambda m: {**m, "extra.json": b"{}"}))


def test_newer_major_version_is_refused(saved, tmp_path):
    _, path = saved

    def edit(members):
        manifest = json.loads(members["manifest.json"])
        manifest["format_version"] = "2.0"
        members["manifest.json"] = json.dumps(manifest).encode()
        return members

    with pytest.raises(ModelError, match=r"model format version 2\.0 is not supported by this segwise \(reads 1\.x\)"):
        read_model_file(rewrite(path, tmp_path / "v.segwise", edit))


def test_zip_bomb_is_refused(tmp_path, monkeypatch):
    import segwise.persist as persist

    monkeypatch.setattr(persist, "MAX_TOTAL_BYTES", 1000)
    path = tmp_path / "bomb.segwise"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("manifest.json", b"{}")
        zf.writestr("model.json", b"0" * 5000)
    with pytest.raises(ModelError, match="exceeds the limit"):
        read_model_file(path)


def test_missing_file():
    with pytest.raises(ModelError, match="no such model file"):
        segwise.load_model("/nonexistent/model.segwise")


def test_assign_features_of_a_subset(saved):
    result, path = saved
    model = segwise.load_model(path)
    frame = result.features.frame.iloc[:50]
    assert model.assign_features(pd.DataFrame(frame))["segment_id"].tolist() == result.assignments["segment_id"][:50].tolist()


def test_attributes_that_only_describe_segments_are_not_needed_to_assign(small_population):
    result = segwise.segment(small_population.orders, customers=small_population.customers, random_state=2)
    assert "age" in result.features.frame and "age" not in result.segmenter.feature_columns_
    tx = segwise.load_transactions(small_population.orders)
    assigned = result.model.assign(tx)
    assert assigned["segment_id"].tolist() == result.assignments["segment_id"].tolist()
    with_attributes = segwise.segment(small_population.orders, customers=small_population.customers,
                                      features=["rfm", "age"], n_segments=3, random_state=2)
    with pytest.raises(segwise.InputError, match=r"the model uses customer attributes \(age\)"):
        with_attributes.model.assign(tx)


def _declare_sizes(path, sizes: dict[str, int], *, compressed_too: bool = False) -> None:
    """Rewrite the uncompressed (and optionally compressed) sizes the zip directory declares.

    The reader must refuse on the declared sizes, before inflating anything: this is
    what a zip bomb looks like to it.
    """
    data = bytearray(path.read_bytes())
    position = 0
    while (position := data.find(b"PK\x01\x02", position)) != -1:
        name_length = int.from_bytes(data[position + 28:position + 30], "little")
        name = data[position + 46:position + 46 + name_length].decode()
        if name in sizes:
            data[position + 24:position + 28] = sizes[name].to_bytes(4, "little")
            if compressed_too:
                data[position + 20:position + 24] = sizes[name].to_bytes(4, "little")
        position += 46
    path.write_bytes(bytes(data))


def test_declared_uncompressed_sizes_over_the_limits_are_refused(saved, tmp_path):
    _, path = saved
    with zipfile.ZipFile(path) as zf:
        arrays = [n for n in zf.namelist() if n.startswith("arrays/")]
    too_big = tmp_path / "member.segwise"
    too_big.write_bytes(path.read_bytes())
    _declare_sizes(too_big, {arrays[0]: 3 * 1024**3})
    with pytest.raises(ModelError, match=rf"member '{arrays[0]}' is too large \(3221225472 bytes\)"):
        read_model_file(too_big)
    too_much = tmp_path / "total.segwise"
    too_much.write_bytes(path.read_bytes())
    _declare_sizes(too_much, {name: 2 * 1024**3 - 1 for name in arrays[:3]}, compressed_too=True)
    with pytest.raises(ModelError, match="uncompressed size .* bytes exceeds the limit; refusing to load"):
        read_model_file(too_much)


def test_a_highly_compressed_large_member_is_refused_as_a_zip_bomb(saved, tmp_path):
    _, path = saved

    def edit(members):
        members["arrays/padding.npy"] = b"\0" * (32 * 1024**2)
        manifest = json.loads(members["manifest.json"])
        manifest["members"]["arrays/padding.npy"] = hashlib.sha256(members["arrays/padding.npy"]).hexdigest()
        members["manifest.json"] = json.dumps(manifest).encode()
        return members

    bomb = tmp_path / "bomb.segwise"
    with zipfile.ZipFile(path) as zf:
        members = edit({name: zf.read(name) for name in zf.namelist()})
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    assert bomb.stat().st_size < 1024**2
    with pytest.raises(ModelError, match=r"member 'arrays/padding\.npy' has a suspicious compression ratio"):
        read_model_file(bomb)


def test_a_pickle_member_is_refused_even_when_listed(saved, tmp_path):
    _, path = saved

    def edit(members):
        members["arrays/evil.npy"] = pickle.dumps({"a": 1})
        manifest = json.loads(members["manifest.json"])
        manifest["members"]["arrays/evil.npy"] = hashlib.sha256(members["arrays/evil.npy"]).hexdigest()
        members["manifest.json"] = json.dumps(manifest).encode()
        return members

    with pytest.raises(ModelError, match=r"array 'arrays/evil\.npy' cannot be loaded safely"):
        read_model_file(rewrite(path, tmp_path / "e.segwise", edit))

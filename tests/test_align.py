import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_blobs
from threadpoolctl import threadpool_limits

import segwise
from segwise import Segmenter
from segwise.align import align_model, align_segments
from segwise.errors import InputError
from segwise.features.base import FeatureSpec
from segwise.model import SegmentationModel

CENTRES = [[0, 0, 0], [10, 0, 0], [0, 10, 0], [0, 0, 10]]


@pytest.fixture(autouse=True)
def _one_thread():
    with threadpool_limits(1):
        yield


def _blobs(centres, n_per=150, seed=0) -> tuple[pd.DataFrame, np.ndarray]:
    X, y = make_blobs([n_per] * len(centres), centers=np.asarray(centres, float), cluster_std=1.0, random_state=seed)
    frame = pd.DataFrame(X, columns=["f0", "f1", "f2"])
    # A spend-like column orders segments by value; it differs between the blobs.
    frame["spend"] = 10.0 + 5.0 * y + np.random.default_rng(seed).normal(0, 0.1, len(y))
    return frame, y


def _model(frame, model_id, **params) -> SegmentationModel:
    seg = Segmenter(features=["f0", "f1", "f2"], **params).fit(frame)
    return SegmentationModel(segmenter=seg, spec=FeatureSpec(families=[]), metadata={"model_id": model_id})


def _blob_ids(model, y) -> dict[int, int]:
    """Planted blob -> segment id (each blob is one segment)."""
    labels = model.segmenter.labels_
    return {int(b): int(np.bincount(labels[y == b]).argmax()) for b in np.unique(y)}


def test_retrained_segments_numbered_differently_get_their_previous_ids_back():
    frame, y = _blobs(CENTRES)
    old = _model(frame, "old", n_segments=4, random_state=0, value_col="spend")
    new_frame, new_y = _blobs(CENTRES, seed=1)
    # Ordering by another column numbers the same segments differently.
    new = _model(new_frame, "new", n_segments=4, random_state=9, value_col="f0")
    assert _blob_ids(new, new_y) != _blob_ids(old, y)
    alignment = align_model(new, old, new_frame)
    assert _blob_ids(new, new_y) == _blob_ids(old, y)
    assert [m["status"] for m in alignment.matches] == ["kept"] * 4
    assert alignment.new_segments == [] and alignment.vanished == []
    assert new.segmenter.segment_names_ == old.segmenter.segment_names_
    np.testing.assert_array_equal(new.segmenter.predict(frame), old.segmenter.predict(frame))


def test_profile_alignment_needs_no_customer_data():
    frame, y = _blobs(CENTRES)
    old = _model(frame, "old", n_segments=4, random_state=0, value_col="spend")
    new_frame, new_y = _blobs(CENTRES, seed=2)
    new = _model(new_frame, "new", n_segments=4, random_state=3, value_col="f1")
    alignment = align_segments(new, old, method="profile")
    assert sorted(alignment.id_map.values()) == [0, 1, 2, 3] and not alignment.new_segments
    align_model(new, old, method="profile")
    assert _blob_ids(new, new_y) == _blob_ids(old, y)


def test_a_planted_new_segment_is_reported_new_with_a_fresh_id():
    frame, y = _blobs(CENTRES)
    old = _model(frame, "old", n_segments=4, random_state=0, value_col="spend")
    new_frame, new_y = _blobs(CENTRES + [[10, 10, 10]], seed=3)
    new = _model(new_frame, "new", n_segments=5, random_state=0, value_col="spend")
    alignment = align_model(new, old, new_frame)
    record = alignment.to_dict()
    assert [s["segment_id"] for s in record["new_segments"]] == [4]
    assert record["vanished_segments"] == [] and record["segment_id_high_water"] == 4
    ids = _blob_ids(new, new_y)
    assert ids[4] == 4, "the planted blob is the new segment"
    assert {b: ids[b] for b in range(4)} == _blob_ids(old, y)
    names = list(new.segmenter.segment_names_.values())
    assert len(set(names)) == 5
    planted = next(m for m in record["matches"] if m["status"] == "new")
    assert planted["previous_segment_id"] is None and planted["distance"] is None
    assert new.metadata["segment_id_high_water"] == 4 and new.metadata["aligned_to"] == "old"


def test_a_segment_that_moved_away_is_new_and_its_predecessor_vanished():
    frame, y = _blobs(CENTRES)
    old = _model(frame, "old", n_segments=4, random_state=0, value_col="spend")
    moved = CENTRES[:3] + [[-10, -10, -10]]
    new_frame, new_y = _blobs(moved, seed=4)
    new = _model(new_frame, "new", n_segments=4, random_state=0, value_col="spend")
    old_ids = _blob_ids(old, y)
    alignment = align_model(new, old, new_frame)
    record = alignment.to_dict()
    assert [v["segment_id"] for v in record["vanished_segments"]] == [old_ids[3]]
    assert [s["segment_id"] for s in record["new_segments"]] == [4]
    rejected = next(m for m in record["matches"] if m["status"] == "new")
    # The Hungarian pair is reported, with why it was rejected.
    assert rejected["nearest_previous_segment_id"] == old_ids[3] and rejected["distance"] > rejected["limit"]
    ids = _blob_ids(new, new_y)
    assert {b: ids[b] for b in range(3)} == {b: old_ids[b] for b in range(3)} and ids[3] == 4
    # Ids now have a gap; assignment, saving and loading still work.
    assigned = new.assign_features(new_frame)
    assert set(assigned["segment_id"]) == set(new.segmenter.segment_names_)
    assert (assigned["segment_name"] == assigned["segment_id"].map(new.segmenter.segment_names_)).all()


def test_retired_ids_are_never_reused(tmp_path):
    frame, _ = _blobs(CENTRES)
    first = _model(frame, "first", n_segments=4, random_state=0, value_col="spend")
    second_frame, _ = _blobs(CENTRES[:3] + [[-10, -10, -10]], seed=4)
    second = _model(second_frame, "second", n_segments=4, random_state=0, value_col="spend")
    align_model(second, first, second_frame)
    second.save(tmp_path / "second.segwise")
    reloaded = segwise.load_model(tmp_path / "second.segwise")
    assert reloaded.metadata["segment_id_high_water"] == 4
    third_frame, third_y = _blobs(CENTRES[:3] + [[-10, -10, -10], [0, 0, -12]], seed=5)
    third = _model(third_frame, "third", n_segments=5, random_state=0, value_col="spend")
    alignment = align_model(third, reloaded, third_frame)
    assert [s["segment_id"] for s in alignment.to_dict()["new_segments"]] == [5]
    assert sorted(third.segmenter.segment_names_) == sorted(reloaded.segmenter.segment_names_) + [5]
    np.testing.assert_array_equal(reloaded.segmenter.predict(second_frame), second.segmenter.predict(second_frame))


def test_same_population_refit_with_another_seed_keeps_every_id(small_population):
    first = segwise.segment(small_population.orders, random_state=0)
    second = segwise.segment(small_population.orders, random_state=5, align_to=first.model)
    alignment = second.alignment
    assert alignment == second.run["alignment"]
    assert all(m["status"] == "kept" for m in alignment["matches"])
    assert alignment["new_segments"] == [] and alignment["vanished_segments"] == []
    assert {m["segment_id"]: m["previous_segment_id"] for m in alignment["matches"]} == {
        s: s for s in first.model.names}
    assert second.model.names == first.model.names
    merged = first.assignments.merge(second.assignments, on="customer_id")
    assert (merged["segment_id_x"] == merged["segment_id_y"]).mean() > 0.97


def test_alignment_errors():
    frame, _ = _blobs(CENTRES)
    old = _model(frame, "old", n_segments=4, random_state=0, value_col="spend")
    new = _model(frame, "new", n_segments=4, random_state=1, value_col="spend")
    with pytest.raises(InputError, match="The 'method' parameter of align_segments must be one of"):
        align_segments(new, old, frame, method="nearest")
    with pytest.raises(InputError, match="centroid alignment needs the new model's training features"):
        align_segments(new, old)
    with pytest.raises(InputError, match=r"the feature table lacks columns the previous model's segments are "
                                         r"defined on \(f2\); align on profiles instead"):
        align_segments(new, old, frame.drop(columns=["f2"]))

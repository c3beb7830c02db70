import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from segwise.cluster import MultiViewSegmenter, TwoStageSegmenter
from segwise.errors import InputError


@pytest.fixture(scope="module")
def nested_stages():
    """Columns 0-1 separate 3 parents; columns 2-3 separate 2 children inside parents 0 and 1 only.

    Parent 2 is tiny (3% of customers) and must not be split.
    """
    rng = np.random.default_rng(0)
    sizes = [900, 900, 60]
    parents = np.repeat([0, 1, 2], sizes)
    children = np.where(parents < 2, rng.integers(0, 2, len(parents)), 0)
    first = np.array([[0, 0], [8, 0], [0, 8]], float)[parents] + rng.normal(scale=0.7, size=(len(parents), 2))
    # Children differ along column 2 by a different amount per parent.
    second = np.column_stack([children * np.where(parents == 0, 4.0, 6.0), np.zeros(len(parents))])
    second += rng.normal(scale=0.6, size=second.shape)
    truth = parents * 2 + children
    return np.column_stack([first, second]), parents, truth


def test_two_stage_recovers_parents_and_children(nested_stages):
    X, parents, truth = nested_stages
    model = TwoStageSegmenter(first_features=[0, 1], second_features=[2, 3], min_segment_size=100,
                              random_state=0).fit(X)
    assert model.first_.n_segments_ == 3
    assert adjusted_rand_score(parents, model.name_parts_[0]["labels"]) > 0.99
    assert model.n_segments_ == 5
    assert adjusted_rand_score(truth, model.labels_) > 0.97
    report = {p["customers"]: p for p in model.details_["parents"]}
    small = report[60]
    assert small["split"] is False and small["reason"] == "fewer than 2 x 100 customers"
    split = [p for p in model.details_["parents"] if p["split"]]
    assert all(p["sub_segments"] == 2 and "highest silhouette" in p["reason"] for p in split)
    assert np.array_equal(model.predict(X), model.labels_)
    assert model.details_["assignment_agreement"] == 1.0
    assert (model.cluster_parts_[:, 1] == -1).sum() == 1


def test_two_stage_with_another_second_method_and_the_size_guard(nested_stages):
    X, _, truth = nested_stages
    model = TwoStageSegmenter(first_features=[0, 1], second_features=[2, 3], second_method="hierarchical",
                              second_params={"linkage": "average"}, min_segment_size=0.02, random_state=0).fit(X)
    assert adjusted_rand_score(truth, model.labels_) > 0.97
    # Hierarchical's segments are what its rule (nearest centroid) assigns: so are the sub-segments.
    assert np.array_equal(model.predict(X), model.labels_)
    assert model.details_["assignment_agreement"] == 1.0
    # With a size guard larger than any child, nothing is split.
    unsplit = TwoStageSegmenter(first_features=[0, 1], second_features=[2, 3], min_segment_size=800,
                                random_state=0).fit(X)
    assert unsplit.n_segments_ == 3 and not unsplit.subs_


def test_two_stage_round_trip(nested_stages):
    X, _, _ = nested_stages
    model = TwoStageSegmenter(first_features=[0, 1], second_features=[2, 3], second_method="gmm",
                              second_params={"covariance_type": "diag"}, random_state=0).fit(X)
    loaded = TwoStageSegmenter.from_state(*model.to_state())
    new = X[::5] + 0.1
    assert np.array_equal(loaded.predict(new), model.predict(new))
    assert np.array_equal(loaded.confidence(new), model.confidence(new))
    with pytest.raises(InputError, match="two_stage combines simple methods"):
        TwoStageSegmenter(second_method="multiview").fit(X)


@pytest.fixture(scope="module")
def two_views():
    """View "a" (columns 0-1) has 3 groups, view "b" (column 2) 2 groups, independent of each other."""
    rng = np.random.default_rng(1)
    n = 3000
    a, b = rng.integers(0, 3, n), rng.integers(0, 2, n)
    cols_a = np.array([[0, 0], [6, 0], [0, 6]], float)[a] + rng.normal(scale=0.6, size=(n, 2))
    col_b = (b * 5.0)[:, None] + rng.normal(scale=0.6, size=(n, 1))
    return np.column_stack([cols_a, col_b]), a, b


def test_multiview_segments_each_view_and_crosses_them(two_views):
    X, a, b = two_views
    model = MultiViewSegmenter(views={"a": [0, 1], "b": [2]}, random_state=0).fit(X)
    assert model.views_["a"].n_segments_ == 3 and model.views_["b"].n_segments_ == 2
    assert adjusted_rand_score(a * 2 + b, model.labels_) > 0.99
    assert model.n_segments_ == 6 and model.details_["n_cells"] == 6
    cells = model.details_["crosstab"]
    assert sum(c["customers"] for c in cells) == len(X) and all(c["kept"] for c in cells)
    assert np.array_equal(model.predict(X), model.labels_)
    assert model.details_["views"]["b"]["columns"] == [2]


def test_multiview_merges_small_cells_into_the_most_similar_kept_cell(two_views):
    X, a, b = two_views
    X = X.copy()
    # Make cell (a=0, b=1) tiny: move most of its customers to b=0.
    move = np.flatnonzero((a == 0) & (b == 1))[20:]
    X[move, 2] -= 5.0
    model = MultiViewSegmenter(views={"a": [0, 1], "b": [2]}, min_cell_share=0.02, random_state=0).fit(X)
    assert model.n_segments_ == 5 and model.details_["merged_customers"] == 20
    merged = [c for c in model.details_["crosstab"] if not c["kept"]]
    assert len(merged) == 1
    # The merged cell goes to the kept cell with the same view-a segment.
    target = model.cluster_parts_[merged[0]["merged_into"]["cluster"]]
    assert target[0] == merged[0]["view_segments"][0]


def test_multiview_round_trip_and_errors(two_views):
    X, _, _ = two_views
    model = MultiViewSegmenter(views={"a": [0, 1], "b": [2]}, view_methods={"b": "gmm"}, random_state=0).fit(X)
    assert model.views_["b"].method_name == "gmm"
    loaded = MultiViewSegmenter.from_state(*model.to_state())
    new = X[::7] + 0.2
    assert np.array_equal(loaded.predict(new), model.predict(new))
    assert np.array_equal(loaded.confidence(new), model.confidence(new))
    with pytest.raises(InputError, match="view_methods/view_params name unknown view"):
        MultiViewSegmenter(views={"a": [0]}, view_methods={"c": "kmeans"}).fit(X)


def test_two_stage_and_multiview_are_deterministic(nested_stages, two_views):
    X, _, _ = nested_stages
    make = lambda: TwoStageSegmenter(first_features=[0, 1], second_features=[2, 3], second_method="hierarchical",
                                     random_state=3).fit(X)
    first, again = make(), make()
    assert np.array_equal(first.labels_, again.labels_) and first.details_ == again.details_
    X, _, _ = two_views
    make = lambda: MultiViewSegmenter(views={"a": [0, 1], "b": [2]}, view_methods={"a": "gmm"}, random_state=3).fit(X)
    first, again = make(), make()
    assert np.array_equal(first.labels_, again.labels_) and first.details_ == again.details_

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from segwise.cluster import DBSCANSegmenter, HDBSCANSegmenter
from segwise.cluster.density import default_min_samples, k_distance_knee
from segwise.errors import InputError

from .populations import tiny_dense_group

METHODS = [DBSCANSegmenter, HDBSCANSegmenter]


@pytest.fixture(scope="module")
def population():
    return tiny_dense_group()


def recall_and_purity(truth: np.ndarray, labels: np.ndarray, group: int) -> tuple[float, float]:
    """Of the planted group, the share in its best-matching segment; of that segment, the share from the group."""
    members = labels[truth == group]
    best = np.bincount(members).argmax()
    return float(np.mean(members == best)), float(np.mean(truth[labels == best] == group))


@pytest.mark.parametrize("cls", METHODS)
def test_tiny_dense_group_is_found_as_a_micro_segment(population, cls):
    X, truth = population
    model = cls(random_state=0).fit(X)
    recall, purity = recall_and_purity(truth, model.labels_, 3)
    tiny = np.bincount(model.labels_[truth == 3]).argmax()
    # HDBSCAN's segment reaches as far as the distance at which it was born, so a few of the
    # uniform noise customers 3-7 units away join the 30 customers of the group (10 of 180
    # on one host, 4 in scikit-learn's own labels; how many depends on the machine's
    # floating point): they join weakly (confidence below 0.1, the group's members 0.79 or
    # more), and the confident members of the segment are the group.
    confident = model.confidence(X) >= 0.5
    _, confident_purity = recall_and_purity(truth[confident], model.labels_[confident], 3)
    assert recall >= 0.95 and purity >= 0.7 and confident_purity >= 0.95
    assert np.mean(confident[(model.labels_ == tiny) & (truth == 3)]) >= 0.95
    micro = {m["cluster"]: m for m in model.details_["micro_segments"]}
    assert tiny in micro and micro[tiny]["share_customers"] < 0.01
    # The large groups come out whole, the noise mostly as Outliers.
    big = truth >= 0
    assert adjusted_rand_score(truth[big], model.labels_[big]) > 0.95
    assert model.outlier_cluster_ == model.n_segments_ - 1
    assert np.mean(model.labels_[truth == -1] == model.outlier_cluster_) > 0.6
    assert model.details_["outliers"]["cluster"] == model.outlier_cluster_


@pytest.mark.parametrize("cls", METHODS)
def test_sampled_fit_assigns_everyone_and_still_finds_the_tiny_group(population, cls):
    X, truth = population
    model = cls(fit_sample=2000, random_state=0).fit(X)
    assert model.labels_.shape == (len(X),) and model.details_["sampled"] and model.details_["fit_sample_size"] == 2000
    recall, purity = recall_and_purity(truth, model.labels_, 3)
    assert recall >= 0.9 and purity >= 0.8


def test_eps_comes_from_the_k_distance_knee_and_can_be_given(population):
    X, _ = population
    model = DBSCANSegmenter(random_state=0).fit(X)
    details = model.details_
    assert details["eps_source"] == "knee of the k-distance curve" and details["eps"] == model.eps_
    curve = details["k_distance_curve"]
    assert curve["distance"] == sorted(curve["distance"]) and 0 < curve["knee_quantile"] < 1
    assert details["min_samples"] == default_min_samples(len(X), 4) == 9
    given = DBSCANSegmenter(eps=0.4, min_samples=5, random_state=0).fit(X)
    assert given.eps_ == 0.4 and given.details_["eps_source"] == "given" and given.min_samples_ == 5


def test_knee_of_a_hand_made_curve():
    # Flat then a sharp rise: the knee is where the rise starts.
    distances = np.array([1.0] * 8 + [1.1, 5.0, 10.0])
    eps, index = k_distance_knee(distances)
    assert (eps, index) == (1.1, 8)


def test_dbscan_assigns_by_the_nearest_core_point_within_eps(population):
    X, _ = population
    model = DBSCANSegmenter(random_state=0).fit(X)
    assert np.array_equal(model.predict(X), model.labels_)
    core = model.core_points_[0]
    far = np.full((1, 4), 100.0)
    assert model.predict(core[None, :])[0] == model.core_labels_[0]
    assert model.confidence(core[None, :])[0] == 1.0
    assert model.predict(far)[0] == model.outlier_cluster_ and model.confidence(far)[0] > 0.95


def test_hdbscan_approximate_membership(population):
    X, truth = population
    model = HDBSCANSegmenter(random_state=0).fit(X)
    # The segments are what the rule assigns; the rule moved few customers away from HDBSCAN's labels.
    assert np.array_equal(model.predict(X), model.labels_)
    assert model.details_["reassigned_by_rule"]["share"] < 0.03
    near_tiny = np.array([[9.0, 9.0, 6.0, 6.0]])
    tiny = np.bincount(model.labels_[truth == 3]).argmax()
    assert model.predict(near_tiny)[0] == tiny
    assert model.predict(np.full((1, 4), 100.0))[0] == model.outlier_cluster_
    conf = model.confidence(X)
    assert conf.min() >= 0 and conf.max() <= 1


@pytest.mark.parametrize("cls", METHODS)
def test_deterministic_and_state_round_trip(population, cls):
    X, _ = population
    a = cls(fit_sample=3000, random_state=1).fit(X)
    b = cls(fit_sample=3000, random_state=1).fit(X)
    assert np.array_equal(a.labels_, b.labels_)
    again = cls.from_state(*a.to_state())
    new = X[::5] + 0.05
    assert np.array_equal(again.predict(new), a.predict(new))
    assert np.array_equal(again.confidence(new), a.confidence(new))


def test_no_dense_group_is_a_clear_error():
    X = np.random.default_rng(0).uniform(size=(300, 3))
    with pytest.raises(InputError, match=r"DBSCANSegmenter found no dense group: every customer is noise "
                                         r"\(eps=0.01, min_samples=50\); make the density threshold looser"):
        DBSCANSegmenter(eps=0.01, min_samples=50).fit(X)


def test_parameter_errors():
    X = np.random.default_rng(0).normal(size=(200, 2))
    with pytest.raises(InputError, match="The 'eps' parameter of DBSCANSegmenter must be 'auto' or a float"):
        DBSCANSegmenter(eps=-1).fit(X)
    with pytest.raises(InputError, match="The 'min_cluster_size' parameter of HDBSCANSegmenter must be an int"):
        HDBSCANSegmenter(min_cluster_size=1).fit(X)
    with pytest.raises(InputError, match="The 'micro_share' parameter of DBSCANSegmenter must be a float"):
        DBSCANSegmenter(micro_share=2).fit(X)

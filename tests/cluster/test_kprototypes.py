import numpy as np
import pandas as pd
import pytest
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score

from segwise.cluster import KPrototypesSegmenter
from segwise.cluster.kmeans import squared_distances
from segwise.cluster.kprototypes import auto_gamma
from segwise.errors import InputError
from segwise.prepare import Preprocessor

from .populations import mixed_groups


@pytest.fixture(scope="module")
def mixed():
    return mixed_groups()


@pytest.fixture(scope="module")
def fitted(mixed):
    X, _ = mixed
    return KPrototypesSegmenter(categorical=[2, 3], random_state=0).fit(X)


def test_recovers_mixed_type_groups_better_than_numeric_kmeans(mixed, fitted):
    X, y = mixed
    assert fitted.n_segments_ == 4
    assert adjusted_rand_score(y, fitted.labels_) > 0.9
    numeric_only = KMeans(4, n_init=4, random_state=0).fit_predict(X[:, :2])
    assert adjusted_rand_score(y, numeric_only) < 0.8
    assert fitted.selection_.candidates[0]["silhouette_metric"] == "sqrt(k-prototypes dissimilarity)"


def test_gamma_rule_by_hand():
    num = np.array([[0.0], [2.0], [0.0], [2.0]])  # variance 1
    cat = np.array([[0], [0], [1], [1]])  # two levels at 50%: mismatch probability 0.5
    assert auto_gamma(num, cat) == pytest.approx(2.0 * 1.0 / 0.5)


def test_metric_space_reproduces_the_dissimilarity(mixed, fitted):
    X, _ = mixed
    space = fitted.metric_space(X[:50])
    centres = np.zeros((fitted.n_segments_, 2 + int(fitted.n_levels_.sum())))
    centres[:, :2] = fitted.numeric_centers_
    offset = 2
    for j, levels in enumerate(fitted.n_levels_):
        centres[np.arange(fitted.n_segments_), offset + fitted.categorical_modes_[:, j]] = np.sqrt(fitted.gamma_ / 2)
        offset += levels
    assert np.allclose(squared_distances(space, centres), fitted._all_costs(X[:50]))


def test_preprocessor_emits_codes_and_their_positions():
    frame = pd.DataFrame({"spend": [1.0, 2.0, 3.0, 4.0, 5.0], "region": ["N", "S", "N", "E", None]})
    pre = Preprocessor(categorical_encoding="codes", corr_threshold=None, weights={"spend": 2.0}).fit(frame)
    out = pre.transform(frame)
    assert list(pre.get_feature_names_out()) == ["spend", "region"] and pre.categorical_indices_ == [1]
    # Levels by frequency then name: N, E, S; a missing value takes the most frequent level.
    assert out[:, 1].tolist() == [0.0, 2.0, 0.0, 1.0, 0.0]
    assert pre.weights_.tolist() == [2.0, 1.0]
    unseen = pre.transform(pd.DataFrame({"spend": [1.0], "region": ["W"]}))
    assert unseen[0, 1] == 0.0
    with pytest.raises(InputError, match="PCA cannot be combined with categorical codes"):
        Preprocessor(categorical_encoding="codes", pca=2).fit(frame)


def test_clear_errors(mixed):
    X, _ = mixed
    with pytest.raises(InputError, match="k-prototypes clusters mixed numeric and categorical features, but no "
                                         "categorical column was given"):
        KPrototypesSegmenter().fit(X)
    with pytest.raises(InputError, match="must hold level codes 0, 1, 2"):
        KPrototypesSegmenter(categorical=[0]).fit(X)
    with pytest.raises(InputError, match="needs numeric features besides the categorical ones"):
        KPrototypesSegmenter(categorical=[0, 1]).fit(X[:, 2:])


def test_deterministic_and_state_round_trip(mixed, fitted):
    X, _ = mixed
    a = KPrototypesSegmenter(4, categorical=[2, 3], random_state=5).fit(X)
    b = KPrototypesSegmenter(4, categorical=[2, 3], random_state=5).fit(X)
    assert np.array_equal(a.labels_, b.labels_)
    assert np.array_equal(fitted.predict(X), fitted.labels_)
    loaded = KPrototypesSegmenter.from_state(*fitted.to_state())
    new = X[::3].copy()
    new[:, :2] += 0.1
    assert np.array_equal(loaded.predict(new), fitted.predict(new))
    assert np.array_equal(loaded.confidence(new), fitted.confidence(new))

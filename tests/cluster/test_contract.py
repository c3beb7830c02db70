"""Every registered method honours the contract of `segwise.cluster.base`."""

import importlib.util
import json

import numpy as np
import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from segwise.cluster import (
    METHODS, AutoencoderSegmenter, AutoSegmenter, DBSCANSegmenter, GaussianMixtureSegmenter, HDBSCANSegmenter,
    HierarchicalSegmenter, KPrototypesSegmenter, MultiViewSegmenter, SOMSegmenter, TwoStageSegmenter,
)

#: Only the autoencoder needs PyTorch (the optional deep extra): without it every other method is
#: still checked, and the autoencoder's checks show as one skip (CI requires torch: tests/conftest.py).
HAS_TORCH = importlib.util.find_spec("torch") is not None

ESTIMATORS = [
    HierarchicalSegmenter(3, random_state=0),
    DBSCANSegmenter(random_state=0),
    HDBSCANSegmenter(min_cluster_size=5, min_samples=3, random_state=0),
    GaussianMixtureSegmenter(3, covariance_type="full", random_state=0),
    SOMSegmenter(3, map_rows=4, map_cols=4, num_iteration=500, random_state=0),
    TwoStageSegmenter(2, sub_k_range=(2, 2), random_state=0),
    MultiViewSegmenter(view_k_range=(2, 3), random_state=0),
    *([AutoencoderSegmenter(3, epochs=2, random_state=0)] if HAS_TORCH else []),
    AutoSegmenter(3, candidates=("kmeans", "gmm"), n_bootstrap=2, random_state=0),
]


def test_the_autoencoder_is_checked_with_the_others():
    if not HAS_TORCH:
        pytest.skip("PyTorch (segwise[deep]) is not installed: the autoencoder's contract checks did not run")
    assert any(isinstance(e, AutoencoderSegmenter) for e in ESTIMATORS)

#: scikit-learn's checks fit on small random data in which HDBSCAN finds no dense
#: group; segwise refuses an all-noise result with an InputError (tested in
#: test_density), so these checks cannot pass for it.
_HDBSCAN_ALL_NOISE = {
    name: "random check data has no dense group; all-noise results are refused with an InputError"
    for name in ("check_fit_score_takes_y", "check_dont_overwrite_parameters", "check_n_features_in_after_fitting",
                 "check_estimators_dtypes", "check_dtype_object", "check_estimators_nan_inf",
                 "check_f_contiguous_array_estimator", "check_methods_sample_order_invariance",
                 "check_methods_subset_invariance", "check_fit2d_1feature", "check_dict_unchanged",
                 "check_fit2d_predict1d")
}


def _expected_failures(estimator):
    return _HDBSCAN_ALL_NOISE if isinstance(estimator, HDBSCANSegmenter) else {}


@pytest.mark.slow
@parametrize_with_checks(ESTIMATORS, expected_failed_checks=_expected_failures)
def test_scikit_learn_compatible(estimator, check):
    check(estimator)


def test_every_method_is_registered_under_its_name():
    assert sorted(METHODS) == ["auto", "autoencoder", "dbscan", "gmm", "hdbscan", "hierarchical", "kmeans",
                               "kprototypes", "multiview", "som", "two_stage"]
    for name, cls in METHODS.items():
        assert cls.method_name == name


@pytest.mark.parametrize("estimator", ESTIMATORS + [KPrototypesSegmenter(3, categorical=[3], random_state=0)],
                         ids=lambda e: type(e).__name__)
def test_state_is_json_and_arrays_and_predictions_survive(estimator):
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(loc=c, scale=0.5, size=(80, 4)) for c in (0.0, 4.0, 8.0)])
    X[:, 3] = np.repeat([0, 1, 2], 80)
    model = estimator.fit(X)
    meta, arrays = model.to_state()
    json.dumps(meta, allow_nan=False)
    assert all(isinstance(v, np.ndarray) and v.dtype != object for v in arrays.values())
    loaded = type(model).from_state(json.loads(json.dumps(meta)), {k: np.array(v) for k, v in arrays.items()})
    assert np.array_equal(loaded.predict(X), model.predict(X))
    conf = loaded.confidence(X)
    assert conf.min() >= 0 and conf.max() <= 1 and np.array_equal(conf, model.confidence(X))
    assert len(np.unique(model.labels_)) == model.n_segments_
    both = loaded.predict_with_confidence(X)
    assert np.array_equal(both[0], model.predict(X)) and np.array_equal(both[1], conf)

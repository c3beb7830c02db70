"""The method registry: methods fitted here, and model classes loaded here."""

import numpy as np
import pytest

from segwise.cluster import METHODS, MODEL_CLASSES, get_method, get_model_class
from segwise.errors import InputError
from segwise.segmenter import Segmenter
from segwise.cluster.mllib import SparkBisectingKMeans, SparkGaussianMixture


def test_models_fitted_on_spark_load_here_but_are_not_local_methods():
    assert MODEL_CLASSES["spark_gmm"] is SparkGaussianMixture
    assert MODEL_CLASSES["spark_bisecting_kmeans"] is SparkBisectingKMeans
    assert set(METHODS) <= set(MODEL_CLASSES)
    assert not {"spark_gmm", "spark_bisecting_kmeans"} & set(METHODS)
    assert all(cls.fitted_by is None for cls in METHODS.values())
    assert get_model_class("spark_gmm") is SparkGaussianMixture
    with pytest.raises(InputError, match=r"the method 'spark_gmm' is not fitted by this engine: its models are "
                                         r"fitted by the Spark engine \(segwise run --engine spark --method gmm\)"):
        get_method("spark_gmm")
    with pytest.raises(InputError, match=r"unknown segmentation method 'spark'; methods are: .*kmeans"):
        get_method("spark")
    with pytest.raises(InputError, match=r"the model names an unknown segmentation method 'hdbscan2' .*upgrade"):
        get_model_class("hdbscan2")


def test_segmenter_refuses_a_spark_only_method_before_fitting(tmp_path):
    frame = np.random.default_rng(0).normal(size=(50, 3))
    with pytest.raises(InputError, match="--engine spark --method bisecting_kmeans"):
        Segmenter(method="spark_bisecting_kmeans", n_segments=2).fit(frame)


@pytest.mark.parametrize("name", sorted(METHODS))
def test_every_method_declares_every_parameter(name):
    """The declarations the CLI and the docs read cover the estimator's parameters, no more."""
    from segwise.cluster.base import method_parameters

    method = METHODS[name]
    declared = method_parameters(method)
    assert sorted(p.name for p in declared) == sorted(method().get_params(deep=False))
    assert all(p.help and p.type for p in declared)
    assert set(method.param_docs) <= {p.name for p in declared}
    assert method.assignment_rule
    assert set(method.cli_options) <= set(method.param_docs)


def test_report_sections_are_declared_by_methods_and_rendered_by_the_report():
    from segwise.report.method_data import SECTION_BUILDERS

    declared = {section for method in METHODS.values() for section in method.report_sections}
    assert declared == set(SECTION_BUILDERS)

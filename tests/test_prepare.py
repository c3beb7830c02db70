import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.decomposition import PCA
from sklearn.preprocessing import QuantileTransformer, RobustScaler, StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from segwise.errors import InputError
from segwise.prepare import Preprocessor


@pytest.fixture
def frame():
    rng = np.random.default_rng(0)
    n = 2000
    spend = rng.lognormal(3, 1.2, n)
    return pd.DataFrame({
        "recency_days": rng.uniform(1, 400, n),
        "monetary_total": spend,
        "monetary_copy": spend * 2.0 + rng.normal(0, 1e-3, n),
        "age": np.where(rng.uniform(size=n) < 0.1, np.nan, rng.normal(40, 10, n)),
        "constant": np.ones(n),
        "region": rng.choice(["North", "South", "East"], n),
    })


def test_each_step_matches_its_scikit_learn_reference(frame):
    pre = Preprocessor(winsorize=None, corr_threshold=None).fit(frame)
    out = pd.DataFrame(pre.transform(frame), columns=pre.get_feature_names_out())
    report = pre.report_
    assert report["log"] == {"monetary_total": pytest.approx(report["log"]["monetary_total"]),
                             "monetary_copy": report["log"]["monetary_copy"]}
    assert report["log"]["monetary_total"].startswith("skewness ")
    assert report["dropped"] == {"constant": "constant"}
    assert report["indicators"] == ["age_missing"]
    # median imputation + indicator
    age = frame["age"].fillna(frame["age"].median())
    assert out["age"].to_numpy() == pytest.approx(StandardScaler().fit_transform(age.to_frame()).ravel())
    assert out["age_missing"].sum() == frame["age"].isna().sum()
    # log1p then standard scaling
    logged = np.log1p(frame[["monetary_total"]])
    assert out["monetary_total"].to_numpy() == pytest.approx(StandardScaler().fit_transform(logged).ravel())
    # one-hot in frequency order, 0/1
    onehot = [c for c in out.columns if c.startswith("region=")]
    assert len(onehot) == 3 and set(np.unique(out[onehot].to_numpy())) == {0.0, 1.0}
    assert (out[onehot].sum(axis=1) == 1).all()


def test_declared_log_columns_and_the_quantile_option(frame):
    pre = Preprocessor(log_columns=["recency_days"], corr_threshold=None).fit(frame)
    assert pre.report_["log"]["recency_days"] == "declared log-scale"
    q = Preprocessor(skew_transform="quantile", winsorize=None, corr_threshold=None, random_state=0).fit(frame)
    assert q.report_["quantile"] == ["monetary_total", "monetary_copy"]
    ours = pd.DataFrame(q.transform(frame), columns=q.get_feature_names_out())["monetary_total"].to_numpy()
    reference = QuantileTransformer(n_quantiles=1000, output_distribution="normal", random_state=0)
    expected = StandardScaler().fit_transform(reference.fit_transform(frame[["monetary_total"]])).ravel()
    assert ours == pytest.approx(expected, abs=1e-9)


def test_winsorising_caps_at_training_quantiles(frame):
    pre = Preprocessor(winsorize=(0.05, 0.95), scaler="robust", corr_threshold=None).fit(frame)
    x = np.log1p(frame["monetary_total"].to_numpy())
    lo, hi = np.quantile(x, [0.05, 0.95])
    capped = np.clip(x, lo, hi).reshape(-1, 1)
    out = pd.DataFrame(pre.transform(frame), columns=pre.get_feature_names_out())
    assert out["monetary_total"].to_numpy() == pytest.approx(RobustScaler().fit_transform(capped).ravel())
    extreme = frame.iloc[:1].copy()
    extreme["monetary_total"] = 1e9
    assert pre.transform(extreme)[0, 1] == pytest.approx(out["monetary_total"].max())


def test_correlation_pruning_reports_what_it_dropped(frame):
    pre = Preprocessor().fit(frame)
    assert pre.report_["dropped"]["monetary_copy"].startswith("correlated with monetary_total (r = 1.000")
    assert "monetary_copy" not in pre.get_feature_names_out()


def test_weights_by_column_and_family(frame):
    plain = Preprocessor(corr_threshold=None).fit(frame)
    weighted = Preprocessor(corr_threshold=None, weights={"recency_days": 2, "value": 0.5},
                            families={"monetary_total": "value", "monetary_copy": "value"}).fit(frame)
    names = list(plain.get_feature_names_out())
    a, b = plain.transform(frame), weighted.transform(frame)
    assert b[:, names.index("recency_days")] == pytest.approx(2 * a[:, names.index("recency_days")])
    assert b[:, names.index("monetary_total")] == pytest.approx(0.5 * a[:, names.index("monetary_total")])
    with pytest.raises(InputError, match="weights name unknown feature"):
        Preprocessor(weights={"nope": 2}).fit(frame)


def test_pca_option(frame):
    numeric = frame.drop(columns=["region"])
    pre = Preprocessor(pca=2, corr_threshold=None, random_state=0).fit(numeric)
    assert list(pre.get_feature_names_out()) == ["pc1", "pc2"]
    base = Preprocessor(corr_threshold=None).fit(numeric).transform(numeric)
    expected = PCA(2, svd_solver="full").fit_transform(base)
    assert np.abs(pre.transform(numeric)) == pytest.approx(np.abs(expected))


def test_high_cardinality_categories_are_capped(frame):
    frame = frame.assign(city=[f"city{i % 40}" for i in range(len(frame))])
    pre = Preprocessor(max_levels=5).fit(frame)
    cities = [c for c in pre.get_feature_names_out() if c.startswith("city=")]
    assert len(cities) == 5 and cities[-1] == "city=other"
    assert pre.report_["capped_levels"] == {"city": 40}
    unseen = frame.iloc[:2].assign(city="atlantis")
    assert pre.transform(unseen)[:, list(pre.get_feature_names_out()).index("city=other")].tolist() == [1.0, 1.0]


def test_state_round_trip_reproduces_transform_exactly(frame):
    pre = Preprocessor(skew_transform="quantile", pca=3, random_state=1).fit(frame)
    meta, arrays = pre.to_state()
    again = Preprocessor.from_state(meta, arrays)
    assert np.array_equal(again.transform(frame), pre.transform(frame))


def test_parameter_errors_read_like_scikit_learn():
    with pytest.raises(InputError, match=r"The 'scaler' parameter of Preprocessor must be a str among "
                                         r"\{'standard', 'robust'\}\. Got 'minmax' instead\."):
        Preprocessor(scaler="minmax").fit(pd.DataFrame({"a": [1.0, 2.0]}))


def test_missing_columns_at_transform_are_named(frame):
    pre = Preprocessor().fit(frame)
    with pytest.raises(InputError, match="the features lack column\\(s\\) the model needs: 'age'"):
        pre.transform(frame.drop(columns=["age"]))


def test_skewness_is_measured_with_scipy(frame):
    pre = Preprocessor().fit(frame)
    expected = stats.skew(frame["recency_days"])
    assert pre.report_["skewness"]["recency_days"] == pytest.approx(expected, abs=1e-4)


@parametrize_with_checks([Preprocessor(corr_threshold=None)])
def test_scikit_learn_compatible(estimator, check):
    check(estimator)


@pytest.mark.parametrize("options", [{}, {"skew_transform": "quantile", "pca": 3}])
def test_transform_arrays_equals_transform_without_pandas(frame, options):
    frame = frame.assign(region=frame["region"].where(np.arange(len(frame)) % 7 != 0, None))
    pre = Preprocessor(random_state=0, **options).fit(frame)
    values = frame[pre.numeric_in_].to_numpy(dtype=np.float64)
    categories = {c: frame[c].to_numpy(dtype=object) for c in pre.categorical_levels_}
    assert pre.transform_arrays(values, categories) == pytest.approx(pre.transform(frame))
    with pytest.raises(ValueError, match="transform_arrays needs a"):
        pre.transform_arrays(values[:, :2], categories)


def test_transform_works_in_its_own_arrays_and_leaves_the_input_alone():
    # The preparation clips, centres, scales and weights in place: only arrays it made itself.
    rng = np.random.default_rng(5)
    frame = pd.DataFrame({"a": rng.gamma(0.5, size=300), "b": rng.normal(size=300), "c": rng.normal(size=300)})
    frame.loc[::7, "b"] = np.nan
    pre = Preprocessor(weights={"a": 2.0}, random_state=0).fit(frame)
    values = frame[list(pre.numeric_in_)].to_numpy(copy=True)
    before_frame, before_values = frame.copy(), values.copy()
    prepared = pre.transform(frame)
    from_arrays = pre.transform_arrays(values)
    pd.testing.assert_frame_equal(frame, before_frame)
    np.testing.assert_array_equal(values, before_values)
    np.testing.assert_array_equal(prepared, from_arrays)
    assert not np.shares_memory(prepared, values)


def test_preparation_skewness_agrees_with_scipy():
    from segwise.prepare import _skewness

    rng = np.random.default_rng(6)
    values = np.column_stack([rng.gamma(0.3, size=5_000), rng.normal(size=5_000), np.full(5_000, 2.0)])
    np.testing.assert_allclose(_skewness(values)[:2], stats.skew(values[:, :2]), rtol=1e-12)
    assert _skewness(values)[2] == 0.0


@pytest.mark.parametrize("scaler", ["standard", "robust"])
def test_a_two_valued_numeric_column_counts_as_a_yes_no_text_column(scaler):
    # A 0/1 flag and the same flag as yes/no text give the same distances between customers:
    # standardised, a 5% flag would put its holders 4.6 standard deviations from the rest.
    rng = np.random.default_rng(3)
    n = 1500
    flag = (rng.random(n) < 0.05).astype(int)
    base = pd.DataFrame({"spend": rng.lognormal(3, 1, n), "visits": rng.gamma(3, 2, n)})
    as_numbers = base.assign(complained=flag, plan=np.where(rng.random(n) < 0.3, 10.0, 250.0))
    as_text = base.assign(complained=np.where(flag == 1, "yes", "no"), plan=as_numbers["plan"])
    numbers = Preprocessor(scaler=scaler, corr_threshold=None).fit(as_numbers)
    text = Preprocessor(scaler=scaler, corr_threshold=None).fit(as_text)
    assert numbers.report_["yes_no"] == ["complained", "plan"]
    assert text.report_["yes_no"] == ["plan"]
    a, b = numbers.transform(as_numbers), text.transform(as_text)
    pairs = rng.integers(0, n, (400, 2))
    np.testing.assert_allclose(np.linalg.norm(a[pairs[:, 0]] - a[pairs[:, 1]], axis=1),
                               np.linalg.norm(b[pairs[:, 0]] - b[pairs[:, 1]], axis=1), rtol=1e-12, atol=1e-12)
    # Whatever the two values and the log transform: they lie sqrt(2) apart.
    plan = a[:, numbers.prepared_names_.index("plan")]
    assert np.unique(plan).size == 2 and np.ptp(plan) == pytest.approx(np.sqrt(2))
    # A column of three values is scaled by its spread as before.
    three = as_numbers.assign(complained=flag + (rng.random(n) < 0.1))
    assert Preprocessor(scaler=scaler, corr_threshold=None).fit(three).report_["yes_no"] == ["plan"]
    again = Preprocessor.from_state(*numbers.to_state()).transform(as_numbers)
    np.testing.assert_array_equal(again, a)

import numpy as np
import pytest

from segwise.federated.sketch import LogGrid, MergedColumns, column_statistics, weighted_quantile


@pytest.mark.parametrize("p", [0.0, 0.001, 0.25, 0.5, 0.9, 0.999, 1.0])
def test_weighted_quantile_is_numpy_quantile_of_the_repeated_sample(p):
    values = np.array([3.0, 1.0, 7.0, 2.0])
    weights = np.array([2, 5, 1, 4])
    sample = np.repeat(values, weights)
    assert weighted_quantile(values, weights, np.array([p]))[0] == pytest.approx(np.quantile(sample, p))


def test_small_integers_are_exact_and_merging_silos_is_the_pooled_histogram():
    # Below about 21 every bin of the default grid holds a single integer.
    rng = np.random.default_rng(0)
    a = rng.integers(1, 8, (300, 2)).astype(float)
    b = rng.integers(1, 21, (500, 2)).astype(float)
    grid = LogGrid()
    merged = {k: column_statistics(a, grid)[k] + column_statistics(b, grid)[k] for k in column_statistics(a, grid)}
    columns = MergedColumns(merged, grid)
    pooled = np.vstack([a, b])
    probabilities = np.array([0.001, 0.5, 0.999])
    for j in range(2):
        np.testing.assert_allclose(columns.quantiles(j, probabilities), np.quantile(pooled[:, j], probabilities))
    moments, kept = columns.moments()
    np.testing.assert_allclose(moments[0, :, 0], pooled.sum(axis=0))
    np.testing.assert_allclose(moments[0, :, 2], (pooled**3).sum(axis=0))
    assert kept[0].tolist() == [800.0, 800.0]


def test_continuous_quantiles_are_within_the_grid_resolution():
    values = np.random.default_rng(1).lognormal(3, 1.2, (4000, 1))
    grid = LogGrid(bins_per_decade=50)
    columns = MergedColumns(column_statistics(values, grid), grid)
    estimate = columns.quantiles(0, np.array([0.01, 0.5, 0.99]))
    truth = np.quantile(values[:, 0], [0.01, 0.5, 0.99])
    assert np.all(np.abs(estimate / truth - 1) < 10 ** (1 / 50) - 1)


def test_missing_values_and_a_point_mass_of_imputed_values():
    values = np.array([[1.0], [2.0], [np.nan], [np.nan], [10.0]])
    grid = LogGrid()
    columns = MergedColumns(column_statistics(values, grid, min_group_size=1), grid)
    assert columns.missing.tolist() == [[2.0]]
    imputed = np.array([1.0, 2.0, 2.0, 2.0, 10.0])
    assert columns.quantiles(0, np.array([0.25]), 2.0, 2.0)[0] == pytest.approx(np.quantile(imputed, 0.25))


def test_no_bin_sum_over_fewer_than_the_minimum_group_leaves():
    values = np.array([[5.0]] * 6 + [[123.456]])
    stats = column_statistics(values, LogGrid(), min_group_size=5)
    assert 123.456 not in stats["bin_sums"].ravel().tolist()
    assert stats["bin_sums"].sum() == pytest.approx(30.0)
    assert stats["bin_kept"].sum() == 6
    assert stats["counts"].sum() == 7
    lone = column_statistics(np.array([[1.5], [2.5]]), LogGrid(), min_group_size=5)
    assert not lone["moments"].any() and not lone["moments_kept"].any()


def test_grid_places_signs_and_zero():
    grid = LogGrid(bins_per_decade=10, low=1e-3, high=1e3)
    index = grid.index(np.array([-5.0, -1e-4, 0.0, 1e-4, 5.0, 1e9]))
    assert index[1] == index[2] == index[3] == grid.n_side
    assert index[0] < grid.n_side < index[4] <= index[5] == grid.size - 1
    reps = grid.representatives()
    assert reps[grid.index(np.array([5.0]))[0]] == pytest.approx(5.0, rel=0.13)


def test_noise_floor_removes_a_fake_tail():
    grid = LogGrid(bins_per_decade=10)
    stats = column_statistics(np.full((1000, 1), 20.0), grid, exact=False)
    noisy = dict(stats)
    noisy["counts"] = stats["counts"] + np.random.default_rng(0).normal(0, 30, stats["counts"].shape)
    raw = MergedColumns(noisy, grid).quantiles(0, np.array([0.01]))[0]
    floored = MergedColumns(noisy, grid, noise_floor=120.0).quantiles(0, np.array([0.01]))[0]
    assert floored == pytest.approx(20.0, rel=0.13)
    assert abs(raw - 20.0) > abs(floored - 20.0)

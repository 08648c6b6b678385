import numpy as np
import pytest

from riskstudy.evaluation.factor_stats import (
    factor_diagnostics,
    ic_summary,
    information_coefficient,
    rank_autocorrelation,
    t_stat_summary,
    vif,
)


def _orthogonal_exposures(T=4, N=50, K=3, seed=0):
    rng = np.random.default_rng(seed)
    out = np.empty((T, N, K))
    for t in range(T):
        a = rng.standard_normal((N, K))
        q, _ = np.linalg.qr(np.column_stack([np.ones(N), a]))  # orthogonal to the intercept and each other
        out[t] = q[:, 1:]
    return out


def test_vif_orthogonal_is_one_and_correlated_known():
    assert vif(_orthogonal_exposures()) == pytest.approx(np.ones(3))
    q = _orthogonal_exposures(K=2)
    rho = 0.6
    x = np.stack([q[..., 0], rho * q[..., 0] + np.sqrt(1 - rho**2) * q[..., 1]], axis=2)
    np.testing.assert_allclose(vif(x), 1 / (1 - rho**2))
    w = np.random.default_rng(1).uniform(0.5, 2, x.shape[:2])
    assert vif(x, weights=w) != pytest.approx(vif(x))  # weights enter
    collinear = np.stack([q[..., 0], 2 * q[..., 0] + 1], axis=2)
    assert np.isinf(vif(collinear)).all()


def test_rank_autocorrelation():
    rng = np.random.default_rng(2)
    const = np.repeat(rng.standard_normal((1, 30, 2)), 5, axis=0)
    np.testing.assert_allclose(rank_autocorrelation(const), 1.0)
    daily = rank_autocorrelation(const, daily=True)
    assert daily.shape == (5, 2) and np.isnan(daily[0]).all()
    np.testing.assert_allclose(daily[1:], 1.0)
    flip = const * np.array([1, -1, 1, -1, 1])[:, None, None]
    np.testing.assert_allclose(rank_autocorrelation(flip), -1.0)
    mask = np.ones((5, 30), bool)
    mask[1:, :10] = False
    noisy = const.copy()
    noisy[:, :10] = rng.standard_normal((5, 10, 2))  # only the masked-out stocks change
    np.testing.assert_allclose(rank_autocorrelation(noisy, mask=mask), 1.0)
    assert abs(rank_autocorrelation(rng.standard_normal((200, 100, 1)))[0]) < 0.03


def test_information_coefficient_aligns_with_next_day():
    rng = np.random.default_rng(3)
    r = rng.standard_normal((50, 40))
    perfect = np.full_like(r, np.nan)
    perfect[:-1] = r[1:]  # score at t = return at t+1
    ic = information_coefficient(perfect, r)
    assert np.isnan(ic[-1])
    np.testing.assert_allclose(ic[:-1], 1.0)
    # Pearson is not invariant to monotone transforms, Spearman is
    assert (information_coefficient(np.exp(perfect), r, rank=False)[:-1] < 0.99).all()
    same_day = information_coefficient(r, r)  # contemporaneous score: no predictive power
    assert abs(np.nanmean(same_day)) < 0.05
    s = ic_summary(ic)
    assert s["ic_mean"] == pytest.approx(1.0) and s["n_days"] == 49


def test_t_stat_summary_and_table():
    t = np.array([[1.0, -3.0], [3.0, np.nan], [-1.0, 0.5]])
    s = t_stat_summary(t, ["a", "b"])
    assert s.loc["a", "mean_abs_t"] == pytest.approx(5 / 3) and s.loc["a", "pct_abs_t_gt_2"] == pytest.approx(100 / 3)
    assert s.loc["b", "n_days"] == 2 and s.loc["b", "pct_abs_t_gt_2"] == 50
    table = factor_diagnostics(t[:, :2], _orthogonal_exposures(T=3, K=2), ["a", "b"])
    assert list(table.columns) == ["mean_abs_t", "pct_abs_t_gt_2", "n_days", "vif", "rank_autocorr"]

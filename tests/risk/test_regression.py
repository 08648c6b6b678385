import numpy as np
import pytest

from riskstudy.risk.regression import (
    cross_sectional_regression,
    design_matrix,
    lagged,
    wls_r2,
)
from riskstudy.features.weights import regression_weights


def _kkt_constrained_wls(y, X, w, c):
    """Equality-constrained WLS ``min sum w (y - X f)^2 s.t. c'f = 0`` via the KKT system."""
    P = X.shape[1]
    A = np.zeros((P + 1, P + 1))
    A[:P, :P] = X.T @ (w[:, None] * X)
    A[:P, P] = A[P, :P] = c
    return np.linalg.solve(A, np.r_[X.T @ (w * y), 0.0])[:P]


def test_regression_weights_sqrt_and_clipped():
    rng = np.random.default_rng(0)
    size = rng.uniform(1, 100, (3, 200))
    mask = rng.uniform(size=(3, 200)) > 0.2
    w = regression_weights(size, mask)
    assert (w[~mask] == 0).all()
    root = np.sqrt(size)
    for t in range(3):
        cap = np.quantile(root[t][mask[t]], 0.95)
        np.testing.assert_allclose(w[t][mask[t]], np.minimum(root[t][mask[t]], cap))


def test_lagged_shifts_forward():
    a = np.arange(6.0).reshape(3, 2)
    out = lagged(a)
    assert np.isnan(out[0]).all()
    np.testing.assert_array_equal(out[1:], a[:-1])


def test_perfect_fit_recovers_constrained_factor_returns():
    rng = np.random.default_rng(1)
    T, N, K, S = 4, 50, 2, 3
    X = rng.standard_normal((T, N, K))
    sec = rng.integers(0, S, N)
    w = rng.uniform(0.5, 2.0, (T, N))
    mask = np.ones((T, N), bool)
    D = design_matrix(X, sec)
    cap = np.einsum("tn,tns->ts", w, D[:, :, 1 : 1 + S])
    f = rng.standard_normal((T, 1 + S + K))
    f[:, 1 + S - 1] = -(cap[:, :-1] * f[:, 1 : S]).sum(axis=1) / cap[:, -1]  # satisfy the constraint
    y = np.einsum("tnp,tp->tn", D, f)
    cs = cross_sectional_regression(y, X, weights=w, mask=mask, sectors=sec)
    np.testing.assert_allclose(cs.r2, 1.0, atol=1e-12)
    np.testing.assert_allclose(cs.factor_returns, f, atol=1e-10)
    np.testing.assert_allclose(cs.residuals, 0.0, atol=1e-12)


def test_useless_regressor_centred_r2_near_zero():
    rng = np.random.default_rng(2)
    T, N = 20, 2000
    y = rng.standard_normal((T, N)) + 3.0  # large mean: uncentred R^2 is big, centred ~ 0
    X = rng.standard_normal((T, N, 1))
    kw = dict(weights=np.ones((T, N)), mask=np.ones((T, N), bool))
    cs = cross_sectional_regression(y, X, centred=True, **kw)
    assert np.abs(cs.r2).max() < 0.01
    assert cross_sectional_regression(y, X, **kw).r2.min() > 0.8


def test_sector_constraint_and_kkt_solution(market):
    m = market
    T = 40
    w = regression_weights(m.size[:T], m.mask[:T])
    Xl = lagged(m.exposures)[:T]
    cs = cross_sectional_regression(m.returns[:T], Xl, weights=w, mask=m.mask[:T], sectors=m.sectors)
    D = design_matrix(np.nan_to_num(Xl), m.sectors)
    S = int(m.sectors.max()) + 1
    cap = np.einsum("tn,tns->ts", cs.weights, D[:, :, 1 : 1 + S])
    valid = np.isfinite(cs.r2)
    assert valid.sum() == T - 1  # day 0 has no lagged exposures
    share = cap[valid] / cap[valid].sum(axis=1, keepdims=True)
    np.testing.assert_allclose((share * cs.factor_returns[valid, 1 : 1 + S]).sum(axis=1), 0.0, atol=1e-16)
    for t in np.flatnonzero(valid)[:5]:
        ok = cs.weights[t] > 0
        c = np.r_[0.0, cap[t], np.zeros(Xl.shape[2])]
        f = _kkt_constrained_wls(m.returns[t, ok], D[t, ok], cs.weights[t, ok], c)
        np.testing.assert_allclose(cs.factor_returns[t], f, rtol=1e-8, atol=1e-12)
    assert cs.names[:2] == ["country", "sector_0"] and len(cs.names) == 1 + S + 3
    assert np.isnan(cs.residuals[~(cs.weights > 0)]).all()


def test_wls_matches_lstsq_and_t_stats():
    rng = np.random.default_rng(3)
    T, N, K = 5, 100, 3
    X = rng.standard_normal((T, N, K))
    y = X @ np.array([0.5, -0.2, 0.1]) + rng.standard_normal((T, N))
    w = rng.uniform(0.2, 3.0, (T, N))
    mask = rng.uniform(size=(T, N)) > 0.1
    cs = cross_sectional_regression(y, X, weights=w, mask=mask, sectors=None)
    for t in range(T):
        m = mask[t]
        A = np.column_stack([np.ones(m.sum()), X[t, m]]) * np.sqrt(w[t, m])[:, None]
        b = y[t, m] * np.sqrt(w[t, m])
        beta, rss, *_ = np.linalg.lstsq(A, b, rcond=None)
        np.testing.assert_allclose(cs.factor_returns[t], beta, rtol=1e-10)
        se = np.sqrt(rss[0] / (m.sum() - K - 1) * np.diag(np.linalg.inv(A.T @ A)))
        np.testing.assert_allclose(cs.t_stats[t], beta / se, rtol=1e-8)
        np.testing.assert_allclose(cs.r2[t], 1 - rss[0] / (b @ b), rtol=1e-10)


def test_wls_r2_batched_matches_single_and_ignores_nan():
    rng = np.random.default_rng(4)
    y = rng.standard_normal((3, 30))
    X = rng.standard_normal((3, 30, 2))
    w = rng.uniform(0.5, 1.5, (3, 30))
    y2 = y.copy()
    y2[:, 0] = np.nan
    full = wls_r2(y2, X, w, centred=True)
    for b in range(3):
        single = wls_r2(y[b : b + 1, 1:], X[b : b + 1, 1:], w[b : b + 1, 1:], centred=True)
        np.testing.assert_allclose(full[b], single[0])


def test_too_few_stocks_and_empty_sector_give_nan():
    rng = np.random.default_rng(5)
    T, N = 3, 30
    X = rng.standard_normal((T, N, 2))
    sec = np.r_[np.zeros(10, int), np.ones(10, int), np.full(10, 2)]
    mask = np.ones((T, N), bool)
    mask[0, 5:] = False  # 5 stocks < P + 1 = 7
    mask[1, 20:] = False  # sector 2 empty on day 1
    y = rng.standard_normal((T, N))
    cs = cross_sectional_regression(y, X, weights=np.ones((T, N)), mask=mask, sectors=sec)
    assert np.isnan(cs.factor_returns[0]).all() and np.isnan(cs.r2[0])
    assert np.isnan(cs.factor_returns[1, 3]) and np.isfinite(np.delete(cs.factor_returns[1], 3)).all()
    assert np.isfinite(cs.factor_returns[2]).all()


def test_shape_mismatch_raises():
    with pytest.raises(ValueError, match="must all be"):
        cross_sectional_regression(
            np.zeros((3, 4)), np.zeros((3, 5, 1)), weights=np.ones((3, 4)), mask=np.ones((3, 4), bool)
        )

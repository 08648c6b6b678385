import numpy as np
import pytest

from riskstudy.bench_portfolio import synthetic_models
from riskstudy.portfolio.optimize import GMVLongOnly, gmv_closed_form, gmv_long_only_dense, max_sharpe
from riskstudy.risk.estimators import DenseRiskModel


@pytest.fixture(scope="module")
def models():
    return synthetic_models(n=60, p=5, days=3, seed=1)


def test_closed_form_equals_cvxpy_unconstrained(models):
    opt = GMVLongOnly(long_only=False)
    for m in models:
        w = gmv_closed_form(m)
        assert w.sum() == pytest.approx(1.0)
        assert (w < 0).any()  # a genuinely unconstrained solution
        np.testing.assert_allclose(opt.solve(m), w, atol=1e-6)
        np.testing.assert_allclose(gmv_long_only_dense(m.covariance(), long_only=False), w, atol=1e-6)


@pytest.mark.parametrize("solver", ["CLARABEL", "OSQP"])
def test_long_only_factor_form_equals_dense(models, solver):
    opt = GMVLongOnly(solver=solver)
    for m in models:
        w = opt.solve(m)
        assert (w >= 0).all() and w.sum() == pytest.approx(1.0)
        dense = gmv_long_only_dense(m.covariance(), solver=solver)
        np.testing.assert_allclose(w, dense, atol=1e-5)
        # optimality: no lower variance than the dense solution, and below equal weights
        assert m.portfolio_variance(w) <= m.portfolio_variance(dense) * (1 + 1e-6)
        assert m.portfolio_variance(w) < m.portfolio_variance(np.full(m.n_assets, 1 / m.n_assets))
    assert len(opt._cache) == 1 and opt.n_solves_ == len(models)  # compiled once, re-solved


def test_long_only_cache_per_universe_size():
    opt = GMVLongOnly()
    small, large = synthetic_models(n=20, p=3, days=1)[0], synthetic_models(n=30, p=3, days=1)[0]
    assert opt.solve(small).shape == (20,) and opt.solve(large).shape == (30,)
    assert set(opt._cache) == {(20, 3), (30, 3)}


def test_max_sharpe_unconstrained_is_tangency(models):
    m = models[0]
    mu = np.random.default_rng(2).uniform(0.0, 1e-3, m.n_assets)
    s = m.solve(mu)
    np.testing.assert_allclose(max_sharpe(mu, m, long_only=False), s / s.sum(), atol=1e-5)
    dense = DenseRiskModel(m.covariance())
    w_f, w_d = max_sharpe(mu, m), max_sharpe(mu, dense)
    assert (w_f >= 0).all() and w_f.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(w_f, w_d, atol=1e-5)


def test_max_sharpe_mean_variance_and_change_cap(models):
    m = models[1]
    mu = np.random.default_rng(3).uniform(-5e-4, 1e-3, m.n_assets)
    gmv_plus = GMVLongOnly().solve(m)
    np.testing.assert_allclose(max_sharpe(mu, m, gamma=1e7), gmv_plus, atol=1e-4)  # risk dominates
    prev = np.full(m.n_assets, 1 / m.n_assets)
    for gamma in (None, 10.0):
        w = max_sharpe(mu, m, gamma=gamma, w_prev=prev, max_change=0.005)
        assert np.abs(w - prev).max() <= 0.005 + 1e-7
    with pytest.raises(ValueError, match="needs w_prev"):
        max_sharpe(mu, m, max_change=0.1)
    with pytest.raises(ValueError, match="infeasible"):
        max_sharpe(-np.abs(mu), m)

import numpy as np
import pytest

from riskstudy.bench_portfolio import synthetic_models, universe_models
from riskstudy.portfolio.backtest import embed
from riskstudy.portfolio.optimize import GMVLongOnly, gmv_long_only_dense, max_sharpe, min_variance_weights
from riskstudy.risk.covariance import FactorRiskModel
from riskstudy.risk.estimators import DenseRiskModel


@pytest.fixture(scope="module")
def models():
    return synthetic_models(n=60, p=5, days=3, seed=1)


def test_closed_form_equals_cvxpy_unconstrained(models):
    opt = GMVLongOnly(long_only=False)
    for m in models:
        w = m.gmv_weights()
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
    assert opt.n_compiles_ == 1 and opt.n_solves_ == len(models)  # compiled once, re-solved


def _subset(m: FactorRiskModel, assets: np.ndarray) -> FactorRiskModel:
    return FactorRiskModel(m.exposures[assets], m.factor_cov, m.specific_var[assets], assets)


@pytest.mark.parametrize("solver", ["CLARABEL", "OSQP"])
def test_changing_membership_reuses_one_compiled_problem(solver):
    days = universe_models(n=50, p=4, days=6, absent=0.2, seed=2)
    assert len({m.n_assets for m in days}) > 1  # the universe size changes too
    opt = GMVLongOnly(solver=solver, capacity=50)
    for m in days:
        w = opt.solve(m)
        assert w.shape == (m.n_assets,) and (w >= 0).all() and w.sum() == pytest.approx(1.0)
        # oracle: OSQP's polished solution is exact to ~1e-8; Clarabel's dense one is off by up to ~2e-5
        dense = gmv_long_only_dense(m.covariance(), solver="OSQP")
        np.testing.assert_allclose(w, dense, atol=1e-5)
        assert m.portfolio_variance(w) <= m.portfolio_variance(dense) * (1 + 1e-7)
    assert opt.n_compiles_ == 1 and len(opt._cache) == 1 and opt.n_solves_ == len(days)
    assert opt._cache[4].problem.is_dpp()


def test_non_members_get_zero_weight():
    full = synthetic_models(n=40, p=4, days=1, seed=3)[0]
    opt = GMVLongOnly(capacity=40)
    w_full = opt.solve(_subset(full, np.arange(40)))
    # the next day, the stocks held most drop out of the universe
    held = np.argsort(w_full)[-5:]
    m = _subset(full, np.setdiff1d(np.arange(40), held))
    w = embed(opt.solve(m), m.assets, 40)
    assert (w[held] == 0.0).all() and w.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(w[m.assets], gmv_long_only_dense(m.covariance(), solver="OSQP"), atol=1e-5)
    unused = opt._cache[4].w.value[m.n_assets :]  # the slots left free take no weight
    assert np.abs(unused).max() < 1e-8
    assert opt.n_compiles_ == 1


def test_unconstrained_with_free_slots_equals_closed_form():
    full = synthetic_models(n=30, p=3, days=1, seed=4)[0]
    m = _subset(full, np.arange(0, 30, 2))
    w = GMVLongOnly(long_only=False, capacity=30).solve(m)
    np.testing.assert_allclose(w, m.gmv_weights(), atol=1e-6)


def test_capacity_grows_geometrically():
    opt = GMVLongOnly(growth=1.5)
    for n, p in ((20, 3), (25, 3), (18, 3), (31, 3), (20, 5)):
        assert opt.solve(synthetic_models(n=n, p=p, days=1)[0]).shape == (n,)
    # 20 slots, grown to max(25, 30) = 30, then to max(31, 45) = 45; a new P compiles its own
    assert {p: c.capacity for p, c in opt._cache.items()} == {3: 45, 5: 20}
    assert opt.n_compiles_ == 4
    with pytest.raises(ValueError, match="growth"):
        GMVLongOnly(growth=1.0)


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


def test_max_sharpe_and_min_variance_agree_for_factor_and_dense_models(models):
    """One risk interface: the factor-form and the dense CVXPY risk give the same portfolios."""
    m = models[2]
    dense = DenseRiskModel(m.covariance(), m.assets)
    rng = np.random.default_rng(5)
    mu = rng.uniform(-2e-4, 1e-3, m.n_assets)
    prev = np.full(m.n_assets, 1 / m.n_assets)
    for kw in ({}, {"gamma": 50.0}, {"gamma": None, "w_prev": prev, "max_change": 0.01}, {"long_only": False}):
        np.testing.assert_allclose(max_sharpe(mu, m, **kw), max_sharpe(mu, dense, **kw), atol=1e-5)
    for long_only in (True, False):
        w_f = min_variance_weights(m, long_only=long_only, solver="OSQP")
        w_d = min_variance_weights(dense, long_only=long_only, solver="OSQP")
        np.testing.assert_allclose(w_f, w_d, atol=1e-5)
        np.testing.assert_allclose(w_d, gmv_long_only_dense(m.covariance(), long_only=long_only, solver="OSQP"), atol=1e-9)
    np.testing.assert_allclose(min_variance_weights(m, long_only=False), m.gmv_weights(), atol=1e-6)

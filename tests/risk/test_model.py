"""The RiskModel interface: the same identities for the factor-form and the dense implementation."""

import numpy as np
import pytest

from riskstudy.risk.covariance import FactorRiskModel
from riskstudy.risk.estimators import DenseRiskModel
from riskstudy.risk.model import RiskModel


def _factor_model(*, n: int = 30, p: int = 4, rank: int | None = None, seed: int = 0) -> FactorRiskModel:
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p))
    A = rng.standard_normal((p, rank or p)) * 0.01
    return FactorRiskModel(X, A @ A.T, rng.uniform(1e-4, 4e-4, n), np.arange(5, 5 + n))


def _both(seed: int = 0, rank: int | None = None) -> tuple[FactorRiskModel, DenseRiskModel]:
    f = _factor_model(seed=seed, rank=rank)
    return f, DenseRiskModel(f.covariance(), f.assets)


@pytest.mark.parametrize("rank", [None, 2])  # full-rank and singular F
def test_portfolio_variance_is_the_quadratic_form(rank):
    f, d = _both(seed=1, rank=rank)
    S = f.covariance()
    W = np.random.default_rng(2).standard_normal((f.n_assets, 3))
    for m in (f, d):
        assert isinstance(m, RiskModel) and m.n_assets == 30
        np.testing.assert_allclose(m.portfolio_variance(W), np.einsum("nm,nk,km->m", W, S, W), rtol=1e-12)
        assert np.ndim(m.portfolio_variance(W[:, 0])) == 0
        assert m.portfolio_variance(W[:, 0]) == pytest.approx(W[:, 0] @ S @ W[:, 0], rel=1e-12)


@pytest.mark.parametrize("rank", [None, 2])
def test_solve_is_the_dense_inverse(rank):
    f, d = _both(seed=3, rank=rank)
    inv = np.linalg.inv(f.covariance())
    b = np.random.default_rng(4).standard_normal((f.n_assets, 2))
    for m in (f, d):
        np.testing.assert_allclose(m.solve(b), inv @ b, rtol=1e-8)
        np.testing.assert_allclose(m.solve(b[:, 0]), inv @ b[:, 0], rtol=1e-8)


def test_gmv_weights_sum_to_one_and_equal_the_dense_solution():
    f, d = _both(seed=5)
    inv1 = np.linalg.solve(f.covariance(), np.ones(f.n_assets))
    for m in (f, d):
        w = m.gmv_weights()
        assert w.shape == (30,) and w.sum() == pytest.approx(1.0, abs=1e-12)
        np.testing.assert_allclose(w, inv1 / inv1.sum(), rtol=1e-8)
        # first-order condition: Sigma w is proportional to 1
        s = f.covariance() @ w
        np.testing.assert_allclose(s, np.full(30, s.mean()), rtol=1e-8)
    # one implementation, from solve
    assert FactorRiskModel.gmv_weights is RiskModel.gmv_weights is DenseRiskModel.gmv_weights


def test_risk_scale_and_cvxpy_risk_are_the_scaled_variance():
    cp = pytest.importorskip("cvxpy")
    f, d = _both(seed=6)
    assert f.risk_scale() == pytest.approx(f.specific_var.mean())
    assert d.risk_scale() == pytest.approx(np.diag(d.cov).mean())
    w0 = np.random.default_rng(7).uniform(size=f.n_assets)
    w = cp.Variable(f.n_assets)
    w.value = w0
    for m in (f, d):
        expr = m.cvxpy_risk(w)
        assert expr.is_convex()
        assert expr.value == pytest.approx(m.portfolio_variance(w0) / m.risk_scale(), rel=1e-10)


def test_positions_default_to_the_first_n():
    f = _factor_model(n=6)
    assert (f.positions() == np.arange(5, 11)).all()
    assert (DenseRiskModel(np.eye(4)).positions() == np.arange(4)).all()


def test_interface_is_abstract():
    with pytest.raises(TypeError):
        RiskModel()  # type: ignore[abstract]

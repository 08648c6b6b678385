"""IPCA: our vectorised ALS agrees with the ``ipca`` package; its ``predictOOS`` defect; static PCA.

The package's numba kernels are thin ``np.linalg`` wrappers whose first compilation takes about 20 s
per process on one core; this module imports the package with numba's JIT disabled (the same
Python code runs uncompiled), unless the package was already imported compiled.
"""

from __future__ import annotations

import numpy as np
import pytest

from riskstudy.cae import scores
from riskstudy.cae.characteristics import add_constant
from riskstudy.cae.ipca import (IPCA, StaticPCA, _stacked, cross_sectional_factors, ipca_als, package_ipca,
                                portfolio_moments)
from riskstudy.cae.planted import planted_panel


@pytest.fixture(scope="module")
def pkg(ipca_package):
    return ipca_package


@pytest.fixture(scope="module")
def panel():
    ch, truth = planted_panel(n_periods=60, n_stocks=80, n_chars=5, n_factors=3, kind="linear", member_prob=0.85,
                              seed=1)
    return ch, truth


@pytest.mark.parametrize("k", [1, 3])
def test_als_agrees_with_the_package(pkg, panel, k):
    ch, _ = panel
    Z = add_constant(ch.Z)
    ours = ipca_als(Z, ch.R, ch.mask, n_factors=k, tol=1e-8)
    theirs = package_ipca(Z, ch.R, ch.mask, n_factors=k, tol=1e-8)
    assert ours.converged and ours.gamma.shape == (6, k) and ours.factors.shape == (60, k)
    np.testing.assert_allclose(ours.gamma, theirs.gamma, atol=1e-9)
    np.testing.assert_allclose(ours.factors, theirs.factors, atol=1e-9)
    np.testing.assert_allclose(ours.gamma.T @ ours.gamma, np.eye(k), atol=1e-10)  # identification
    ff = ours.factors.T @ ours.factors
    np.testing.assert_allclose(ff - np.diag(np.diag(ff)), 0.0, atol=1e-10)
    assert (np.diff(np.diag(ff)) <= 0).all() and (ours.factors.mean(0) > 0).all()


def test_als_recovers_the_planted_model_and_factors_are_cross_sectional_regressions(panel):
    ch, truth = panel
    train, test = np.arange(40), np.arange(40, 60)
    m = IPCA(n_factors=3, tol=1e-10).fit(ch, train=train)
    b, f = m.betas(ch, test), m.factors(ch, test)
    oracle = scores.r2_total(ch.R[test], truth["beta"][test],
                             cross_sectional_factors(truth["beta"][test], ch.R[test], ch.mask[test]), ch.mask[test])
    assert scores.r2_total(ch.R[test], b, f, ch.mask[test]) == pytest.approx(oracle, abs=2e-3)
    # in sample, the ALS factors are the cross-sectional regressions on the fitted betas
    np.testing.assert_allclose(m.factors(ch, train), m.factors_, atol=1e-8)
    W, Q, n = portfolio_moments(add_constant(ch.Z[train]), ch.R[train], ch.mask[train])
    assert W.shape == (40, 6, 6) and Q.shape == (40, 6) and (n == ch.mask[train].sum(1)).all()


def test_predict_oos_defect(pkg, panel):
    """``InstrumentedPCA.predictOOS`` (ipca 0.6.7) returns one value for a whole cross-section (issue 15).

    It computes ``np.diag(X @ Gamma @ F_oos)`` of an ``(n, 1)`` matrix: the first row's prediction
    only. And it fits one factor from all rows it is given, so two periods are pooled into one
    regression. We compute out-of-sample factors per period ourselves (:meth:`IPCA.factors`).
    """
    ch, _ = panel
    train, t = np.arange(40), 45
    Z = add_constant(ch.Z)
    X, y = _stacked(Z[train], ch.R[train], ch.mask[train])
    reg = pkg.InstrumentedPCA(n_factors=2, intercept=False)
    import contextlib
    import io
    with contextlib.redirect_stdout(io.StringIO()):
        reg = reg.fit(X=X, y=y, quiet=True)
    Xt, yt = _stacked(Z[t:t + 1], ch.R[t:t + 1], ch.mask[t:t + 1])
    out = reg.predictOOS(X=Xt, y=yt)
    n = int(ch.mask[t].sum())
    assert n > 1 and out.shape == (1,)  # the defect: one prediction for n stocks
    beta = Z[t:t + 1] @ reg.Gamma
    f = cross_sectional_factors(beta, ch.R[t:t + 1], ch.mask[t:t + 1])
    ours = (beta[0] @ f[0])[ch.mask[t]]
    assert out[0] == pytest.approx(ours[0])  # ... which is the first stock's
    # two periods at once: one pooled factor, not one per period
    X2, y2 = _stacked(Z[t:t + 2], ch.R[t:t + 2], ch.mask[t:t + 2])
    pooled = reg.predictOOS(X=X2, y=y2)
    b2 = np.asarray(X2) @ reg.Gamma
    f_pooled = np.linalg.solve(b2.T @ b2, b2.T @ np.asarray(y2))
    assert pooled.shape == (1,) and pooled[0] == pytest.approx(b2[0] @ f_pooled)


def test_static_pca_recovers_static_loadings():
    rng = np.random.default_rng(0)
    ch, _ = planted_panel(n_periods=80, n_stocks=50, n_chars=3, n_factors=1, kind="linear", seed=2)
    load = rng.uniform(0.5, 1.5, 50)
    f = 0.05 * rng.standard_normal(80)
    ch.R = np.where(ch.mask, load[None, :] * f[:, None] + 0.01 * rng.standard_normal((80, 50)), np.nan)
    m = StaticPCA(n_factors=1, min_periods=24).fit(ch, train=np.arange(60))
    # 5% of stock-periods are missing and enter the PCA as 0 (after demeaning): loadings a little noisier
    assert m.covered_.all() and np.corrcoef(m.loadings_[:, 0], load)[0, 1] > 0.97
    test = np.arange(60, 80)
    r2 = scores.r2_total(ch.R[test], m.betas(ch, test), m.factors(ch, test), ch.mask[test])
    assert r2 > 0.9


def test_collinear_instruments(pkg, panel):
    """Instruments can coincide (e.g. the paper's ranked ``betasq`` is ``beta`` when every beta is positive).

    Our ALS (minimum-norm solves) fits the same returns as without the duplicate (the betas only up to
    a K x K rotation: the identification Gamma'Gamma = I weighs the duplicated column twice); the
    package's plain ``solve`` raises.
    """
    ch, _ = panel
    Z = add_constant(ch.Z)
    dup = np.concatenate([Z[..., :1], Z], axis=-1)
    a = ipca_als(Z, ch.R, ch.mask, n_factors=2, tol=1e-10)
    b = ipca_als(dup, ch.R, ch.mask, n_factors=2, tol=1e-10)
    assert b.converged
    fitted = lambda Zi, fit: scores.predicted_returns(Zi @ fit.gamma, fit.factors)  # noqa: E731
    np.testing.assert_allclose(fitted(dup, b), fitted(Z, a), atol=1e-7)
    with pytest.raises(np.linalg.LinAlgError):
        package_ipca(dup, ch.R, ch.mask, n_factors=2, max_iter=20)

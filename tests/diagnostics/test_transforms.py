"""Gram-Schmidt: identity Gram matrix, VIF 1, the same span (R^2 unchanged), order and collinearity handled."""

from __future__ import annotations

import numpy as np
import pytest

from riskstudy.diagnostics.transforms import Orthogonalised, gram_schmidt, weighted_gram
from riskstudy.evaluation.factor_stats import vif
from riskstudy.factors.base import FactorModel
from riskstudy.risk.regression import wls_r2


@pytest.fixture()
def panel():
    rng = np.random.default_rng(1)
    T, N, K = 12, 50, 4
    x = rng.normal(size=(T, N, K))
    x[..., 1] += 0.9 * x[..., 0]
    x[..., 3] = 0.5 * x[..., 2] + 0.1 * rng.normal(size=(T, N))
    x[:, :5] = np.nan  # five stocks out of the universe
    w = rng.uniform(0.2, 3.0, (T, N))
    r = np.nansum(x * rng.normal(0, 0.01, (T, 1, K)), axis=2) + rng.normal(0, 0.01, (T, N))
    return x, w, r


def test_identity_gram_zero_mean_and_vif_one(panel):
    x, w, _ = panel
    q, dropped = gram_schmidt(x, weights=w)
    assert not dropped.any() and np.isnan(q[:, :5]).all() and np.isfinite(q[:, 5:]).all()
    np.testing.assert_allclose(weighted_gram(q, w), np.broadcast_to(np.eye(4), (12, 4, 4)), atol=1e-10)
    ok = np.isfinite(q).all(axis=2)
    wn = np.where(ok, w, 0) / np.where(ok, w, 0).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(np.einsum("tn,tnk->tk", wn, np.nan_to_num(q)), 0, atol=1e-12)
    np.testing.assert_allclose(vif(q, weights=w), 1.0, atol=1e-8)
    assert vif(x, weights=w).max() > 2  # the raw factors were collinear


def test_same_span_so_r2_with_an_intercept_is_unchanged(panel):
    x, w, r = panel
    q, _ = gram_schmidt(x, weights=w, order=[2, 0, 3, 1])
    ok = np.isfinite(x).all(axis=2)
    ww = np.where(ok, w, 0.0)
    ones = np.ones((*r.shape, 1))
    a = wls_r2(np.where(ok, r, 0), np.concatenate([ones, np.nan_to_num(x)], axis=2), ww)
    b = wls_r2(np.where(ok, r, 0), np.concatenate([ones, np.nan_to_num(q)], axis=2), ww)
    np.testing.assert_allclose(a, b, rtol=1e-10)


def test_order_decides_which_factor_is_kept_as_is(panel):
    x, w, _ = panel
    q, _ = gram_schmidt(x, weights=w, order=[2, 0, 1, 3])
    ok = np.isfinite(x[0]).all(axis=1)
    first = x[0, ok, 2] - np.average(x[0, ok, 2], weights=w[0, ok])
    corr = np.corrcoef(first, q[0, ok, 0])[0, 1]
    assert corr == pytest.approx(1.0)  # the first in order is only demeaned and scaled
    with pytest.raises(ValueError, match="permutation"):
        gram_schmidt(x, order=[0, 0, 1, 2])


def test_exactly_collinear_factor_is_dropped_not_amplified(panel):
    x, w, _ = panel
    y = x.copy()
    y[..., 3] = 2 * y[..., 0] - y[..., 1]
    q, dropped = gram_schmidt(y, weights=w)
    assert dropped[:, 3].all() and not dropped[:, :3].any()
    assert np.nanmax(np.abs(q[..., 3])) == 0.0


class _Toy(FactorModel):
    def __init__(self, x):
        self.x = x

    def fit(self, md, *, train_rows, valid_rows=None):
        self.names_ = ["a", "b", "c", "d"]
        return self

    def exposures(self, md, *, rows):
        return self.x[rows]


def test_wrapper_names_and_exposures(panel):
    x, w, _ = panel
    m = Orthogonalised(_Toy(x), order=[1, 0, 2, 3]).fit(None, train_rows=np.arange(6))
    assert m.names_ == ["b_gs", "a_gs", "c_gs", "d_gs"]
    q = m.exposures(None, rows=np.arange(12))
    np.testing.assert_allclose(weighted_gram(q, np.ones_like(w)), np.broadcast_to(np.eye(4), (12, 4, 4)), atol=1e-10)

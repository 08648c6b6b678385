"""SRM: rolling PCA loadings, point in time, and the FactorModel wrapper."""

import numpy as np
import pandas as pd

from riskstudy.config import SRMConfig
from riskstudy.data.panel import NUMERIC_FIELDS, Panel
from riskstudy.data.market import MarketData
from riskstudy.factors.srm import PCAFactorModel, pca_exposures


def test_pca_exposures_recover_factor_and_no_lookahead(one_factor):
    r, beta = one_factor
    x = pca_exposures(r, k=2, window=100)
    assert np.isnan(x[:99]).all() and np.isfinite(x[99:]).all()
    np.testing.assert_allclose(x[99:].mean(axis=1), 0.0, atol=1e-12)
    np.testing.assert_allclose(x[99:].std(axis=1), 1.0)
    assert np.corrcoef(x[-1, :, 0], beta)[0, 1] > 0.95  # sign fixed: positive loading on the market
    future = r.copy()
    future[200:] *= -3.0
    np.testing.assert_array_equal(pca_exposures(future, k=2, window=100)[:200], x[:200])


def test_pca_monthly_refit_is_piecewise_constant(one_factor):
    r, _ = one_factor
    mask = np.ones_like(r, bool)
    mask[150:, 0] = False
    x = pca_exposures(r, k=1, window=100, refit_every=21, mask=mask)
    np.testing.assert_array_equal(x[99], x[119])  # same refit block, same universe
    assert not np.array_equal(x[119], x[120])  # next refit
    assert np.isnan(x[150:, 0]).all()
    daily = pca_exposures(r, k=1, window=100, mask=mask)
    np.testing.assert_allclose(x[120], daily[120])


def test_pca_factor_model_is_pca_exposures_of_the_rows(one_factor):
    r, _ = one_factor
    T, N = r.shape
    fields = {f: np.ones((T, N)) for f in NUMERIC_FIELDS}
    fields["ret"] = r
    panel = Panel("us", pd.bdate_range("2015-01-01", periods=T), [f"S{i}" for i in range(N)], fields, np.ones((T, N), bool))
    md = MarketData(panel, pd.Series(r.mean(1), index=panel.dates), "eq")
    m = PCAFactorModel(n_factors=2, config=SRMConfig(window=100, refit_every=5)).fit(md, train_rows=np.arange(150))
    assert m.names_ == ["pc1", "pc2"] and m.n_factors == 2
    rows = np.arange(120, T)
    np.testing.assert_array_equal(m.exposures(md, rows=rows), pca_exposures(r, k=2, window=100, refit_every=5, mask=panel.member)[rows])
    full = m.full_exposures(md, rows=rows)
    assert full.shape == (T, N, 2) and np.isnan(full[:120]).all()


def test_static_pca_uses_the_training_window_only_and_zero_for_new_stocks(one_factor):
    from riskstudy.factors.srm import StaticPCAFactorModel, static_loadings

    r, _ = one_factor
    T, N = r.shape
    v, covered = static_loadings(r[:150], k=2)
    assert covered.all() and np.allclose((v ** 2).sum(0), 1.0) and (v.sum(0) > 0).all()
    changed = r.copy()
    changed[150:] = np.random.default_rng(0).normal(size=(T - 150, N))
    v2, _ = static_loadings(changed[:150], k=2)
    np.testing.assert_array_equal(v, v2)  # later returns never enter
    member = np.ones((T, N), dtype=bool)
    member[:150, 0] = False  # stock 0 enters after the training window
    fields = {f: np.ones((T, N)) for f in NUMERIC_FIELDS}
    fields["ret"] = r
    panel = Panel("us", pd.bdate_range("2015-01-01", periods=T), [f"S{i}" for i in range(N)], fields, member)
    md = MarketData(panel, pd.Series(r.mean(1), index=panel.dates), "eq")
    m = StaticPCAFactorModel(n_factors=2).fit(md, train_rows=np.arange(150))
    x = m.exposures(md, rows=np.arange(150, T))
    assert np.all(x[:, 0] == 0.0) and np.isfinite(x).all()
    np.testing.assert_allclose(x[:, 1:].std(1), 1.0, rtol=1e-6)
    assert abs(m.coverage_ - (N - 1) / N) < 1e-12

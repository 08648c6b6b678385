"""Factor risk models from exposures: the window, the regression on lagged exposures, no look-ahead."""

import dataclasses

import numpy as np
import pytest

from riskstudy.config import RiskConfig
from riskstudy.data.synthetic import make_synthetic_market
from riskstudy.risk.factor_model import EvalWindow, factor_regression, factor_risk_models, size_and_weights
from riskstudy.risk.regression import design_matrix


@pytest.fixture(scope="module")
def market():
    return make_synthetic_market(n_days=160, n_stocks=30, n_factors=2, n_sectors=2, seed=3)


def _true_next(market) -> np.ndarray:
    """Exposures known at the close of t that price day t + 1."""
    X = np.full(market.exposures[..., :2].shape, np.nan)
    X[:-1] = market.exposures[1:, :, :2]
    return X


def test_eval_window_from_dates(market):
    d = market.panel.dates
    w = EvalWindow.from_dates(market.panel, history_start=d[10], test_start=d[100], test_end=d[-1])
    assert w.rows == slice(10, 160)
    rel = d[w.rows]
    assert rel[w.test[0]] == d[100] and (w.test + 1 < len(rel)).all()
    assert rel[w.test[-1] + 1] == d[-1]  # the last decision day's outcome is test_end


def test_regression_uses_the_previous_days_exposures(market):
    panel, X = market.panel, _true_next(market)
    rows = slice(20, None)
    cs, design = factor_regression(panel, X, rows, factor_names=["a", "b"])
    codes, labels = panel.sector_codes()
    assert cs.names[-2:] == ["a", "b"] and design.shape == (140, 30, 1 + len(labels) + 2)
    np.testing.assert_array_equal(design[:-1], design_matrix(X[rows][:-1], codes, n_sectors=len(labels)))
    assert np.isnan(design[-1]).all()  # the last day has no exposures (nothing to price)
    # planted truth: the style factor returns of day t are recovered from X_{t-1} (sanity level: the
    # synthetic sectors and country share part of the style variation)
    f_true = market.factor_returns[rows][1:, :2]
    assert min(np.corrcoef(cs.factor_returns[1:, -2 + k], f_true[:, k])[0, 1] for k in range(2)) > 0.6
    assert np.isnan(cs.factor_returns[0]).all()  # the first row has no previous exposures
    size, w = size_and_weights(panel)
    assert size.shape == w.shape == panel.shape and (w[panel.member & np.isfinite(size)] > 0).all()


def test_factor_risk_models_have_no_look_ahead(market):
    panel, X = market.panel, _true_next(market)
    risk = RiskConfig(min_history=40)
    rows, t = slice(20, None), 90  # window-relative forecast day
    cs, series = factor_risk_models(panel, X, rows, factor_names=["a", "b"], risk=risk)
    m = series.model(t)
    assert set(m.assets) <= set(np.flatnonzero(panel.member[20 + t]))
    # change everything after the close of t: returns and exposures
    later = slice(20 + t + 1, None)
    fields = {k: v.copy() for k, v in panel.fields.items()}
    fields["ret"][later] *= -3.0
    X2 = X.copy()
    X2[later] = np.random.default_rng(0).standard_normal(X2[later].shape)
    _, series2 = factor_risk_models(dataclasses.replace(panel, fields=fields), X2, rows, factor_names=["a", "b"], risk=risk)
    m2 = series2.model(t)
    np.testing.assert_array_equal(m.assets, m2.assets)
    np.testing.assert_allclose(m.factor_cov, m2.factor_cov, rtol=1e-12)
    np.testing.assert_allclose(m.specific_var, m2.specific_var, rtol=1e-12)
    np.testing.assert_array_equal(m.exposures, m2.exposures)
    assert series.model(5) is None  # before min_history

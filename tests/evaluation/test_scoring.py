"""Scoring a risk model: one rebalancing rule for every row (issue 9.7), forecast quality from the same models."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from riskstudy.config import DenseConfig, RiskConfig, render_profile, validate_params
from riskstudy.data.panel import NUMERIC_FIELDS, Panel
from riskstudy.data.synthetic import make_synthetic_market
from riskstudy.evaluation.forecast import forecast_panel
from riskstudy.evaluation.scoring import (
    ANN,
    _forecast_quality,
    evaluate_dense_estimator,
    evaluate_factor_model,
    market_row,
)
from riskstudy.portfolio.backtest import embed
from riskstudy.portfolio.optimize import gmv_long_only_dense
from riskstudy.risk.estimators import trailing_covariance
from riskstudy.risk.factor_model import EvalWindow, factor_risk_models

ROOT = Path(__file__).resolve().parents[2]


def _panel(*, T: int = 130, N: int = 25, seed: int = 0) -> Panel:
    """One-factor returns (T, N) with ~5% of the stock-days outside the universe."""
    rng = np.random.default_rng(seed)
    beta = rng.uniform(0.5, 1.5, N)
    ret = rng.standard_normal((T, 1)) * 0.01 * beta + rng.standard_normal((T, N)) * rng.uniform(0.005, 0.02, N)
    fields = {f: np.ones((T, N)) for f in NUMERIC_FIELDS}
    fields["ret"] = ret
    member = rng.uniform(size=(T, N)) > 0.05
    return Panel("us", pd.bdate_range("2015-01-01", periods=T), [f"S{i}" for i in range(N)], fields, member)


def test_dense_gmv_long_is_resolved_daily_under_the_default_profile():
    """Issue 9.7: the default profile's dense GMV+ used to be re-solved every 5th day with drifting weights.

    Every test day's GMV+ return must be that day's freshly solved dense GMV+ portfolio times the
    next day's returns (the rule of the factor-model rows).
    """
    raw = render_profile("default", ROOT / "profiles")
    risk = RiskConfig(**raw["risk"]).model_copy(update={"n_random_portfolios": 2})
    dense = DenseConfig(**raw["dense"]).model_copy(update={"window": 60})
    panel = _panel()
    window = EvalWindow(rows=slice(0, None), test=np.arange(70, 90))
    ev = evaluate_dense_estimator("Ledoit-Wolf", panel, window, method="ledoit_wolf", dense=dense, risk=risk)
    ret, mask = panel["ret"], panel.member
    expected = []
    for t in window.test:
        m = trailing_covariance(ret, t, method="ledoit_wolf", window=60, mask=mask)
        expected.append(np.nan_to_num(ret[t + 1, m.assets]) @ gmv_long_only_dense(m.covariance()))
    np.testing.assert_allclose(ev.gmv_long_returns.to_numpy(), expected, rtol=1e-6, atol=1e-9)
    assert len(ev.gmv_long_returns) == len(window.test)


def test_dense_estimator_refuses_singular_sample_covariance():
    risk, dense = RiskConfig(n_random_portfolios=0), DenseConfig(window=20)  # 20 days, ~24 stocks: singular
    panel = _panel()
    with pytest.raises(ValueError, match="singular"):
        evaluate_dense_estimator("Sample cov", panel, EvalWindow(rows=slice(0, None), test=np.arange(70, 75)), method="sample",
                                 dense=dense, risk=risk)


def test_default_profile_has_no_singular_sample_covariance():
    """Issue 9.7: 252 days of ~300 stocks make a singular sample covariance; it is not a Table 1 row."""
    p = validate_params(render_profile("default", ROOT / "profiles"))
    assert "sample" not in p.dense.estimators
    assert "sample" not in DenseConfig().estimators
    assert not hasattr(p.risk, "dense_long_every")  # one rule for every row: nothing to configure


@pytest.fixture(scope="module")
def synthetic():
    mk = make_synthetic_market(n_days=180, n_stocks=30, n_factors=2, n_sectors=2, seed=5)
    X = np.full(mk.exposures[..., :2].shape, np.nan)
    X[:-1] = mk.exposures[1:, :, :2]  # known at t, pricing t + 1
    d = mk.panel.dates
    window = EvalWindow.from_dates(mk.panel, history_start=d[10], test_start=d[120], test_end=d[-1])
    return mk.panel, X, window, RiskConfig(min_history=40, n_random_portfolios=7)


def test_factor_model_scores_the_daily_gmv_and_the_forecast_panel_of_the_same_models(synthetic):
    panel, X, window, risk = synthetic
    ev = evaluate_factor_model("true", panel, X, window, factor_names=["a", "b"], risk=risk)
    _, series = factor_risk_models(panel, X, window.rows, factor_names=["a", "b"], risk=risk)
    ret = panel["ret"][window.rows]
    N = ret.shape[1]
    models = [series.model(t) for t in window.test]
    expected = [embed(m.gmv_weights(), m.assets, N) @ np.nan_to_num(ret[t + 1]) for m, t in zip(models, window.test)]
    np.testing.assert_array_equal(ev.gmv_returns.to_numpy(), expected)
    assert ev.table1_row()["gmv_vol"] == pytest.approx(np.std(expected, ddof=1) * ANN)
    # forecast quality is the forecast panel's (GMV + the same random portfolios) of these models
    fp = forecast_panel(series.model, ret, window.test, n_random=risk.n_random_portfolios, seed=risk.seed)
    assert ev.forecast == _forecast_quality(fp, n_random=risk.n_random_portfolios)
    assert ev.forecast["n_days"] == len(window.test) and ev.gmv_long_returns.notna().all()
    assert 0 < ev.turnover["gmv_long"] < ev.turnover["gmv"]  # the long-only portfolio trades less
    np.testing.assert_array_equal(ev.r2.index, panel.dates[window.rows][window.test])


def test_factor_model_without_long_only_skips_gmv_plus(synthetic):
    panel, X, window, risk = synthetic
    ev = evaluate_factor_model("true", panel, X, window, factor_names=["a", "b"], risk=risk, long_only=False)
    assert ev.gmv_long_returns.isna().all() and len(ev.gmv_long_returns) == len(ev.gmv_returns)
    assert ev.turnover["gmv_long"] == 0.0 and np.isnan(ev.table1_row()["gmv_long_vol"])


def test_market_row_is_the_benchmark_volatility(synthetic):
    panel, _, window, _ = synthetic
    bench = pd.Series(np.linspace(-0.01, 0.01, panel.shape[0]) ** 2, index=panel.dates)
    row = market_row(bench, panel, window)
    d = panel.dates[window.rows][window.test + 1]
    assert row["r2"] is None and row["gmv_vol"] == row["gmv_long_vol"] == pytest.approx(bench[d].std() * ANN)

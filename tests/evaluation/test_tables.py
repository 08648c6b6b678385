"""Scoring tables of daily risk forecasts: a true covariance is calibrated, a mis-scaled one is not, days without a
forecast are skipped, seeds give intervals."""

from __future__ import annotations

import numpy as np
import pytest

from riskstudy.config import RiskConfig
from riskstudy.evaluation.tables import SCORES, score_risk_tables
from riskstudy.risk.estimators import DenseRiskModel


@pytest.fixture(scope="module")
def gaussian():
    rng = np.random.default_rng(0)
    N, T = 12, 900
    A = rng.standard_normal((N, N)) * 0.01
    cov = A @ A.T + np.diag(rng.uniform(1e-4, 4e-4, N))
    r = rng.multivariate_normal(np.zeros(N), cov, size=T)
    return r, cov


def test_true_covariance_is_calibrated_and_beats_a_mis_scaled_one(gaussian):
    r, cov = gaussian
    days = np.arange(100, 899)
    true = {int(t): DenseRiskModel(cov) for t in days}
    wide = {int(t): DenseRiskModel(4 * cov) for t in days}
    q = score_risk_tables(r, {"true": [true], "4x": [wide]}, days, risk=RiskConfig(n_random_portfolios=20))
    assert set(SCORES) <= set(q.columns) and (q["seeds"] == 1).all() and (q["n_days"] == len(days)).all()
    assert q[[f"{k}_lo" for k in SCORES]].isna().all().all()  # one table: the columns exist, without an interval
    assert abs(q.loc["true", "bias_random_mean"] - 1) < 0.1 and abs(q.loc["4x", "bias_random_mean"] - 0.5) < 0.05
    assert q.loc["true", "qlike_random"] < q.loc["4x", "qlike_random"]
    # the GMV weights do not depend on the scale: same portfolios, same realised volatility
    assert q.loc["true", "gmv_vol"] == pytest.approx(q.loc["4x", "gmv_vol"])
    assert q.loc["true", "gmv_long_vol"] == pytest.approx(q.loc["4x", "gmv_long_vol"], rel=1e-4)


def test_days_without_a_forecast_are_skipped_and_seeds_give_intervals(gaussian):
    r, cov = gaussian
    days = np.arange(100, 300)
    a = {int(t): (DenseRiskModel(cov) if t % 2 else None) for t in days}
    b = {int(t): DenseRiskModel(1.5 * cov) for t in days}
    q = score_risk_tables(r, {"seeded": [a, b]}, days, risk=RiskConfig(n_random_portfolios=5))
    assert q.loc["seeded", "seeds"] == 2 and q.loc["seeded", "n_days"] == len(days) // 2
    assert q.loc["seeded", "bias_gmv_lo"] <= q.loc["seeded", "bias_gmv"] <= q.loc["seeded", "bias_gmv_hi"]
    with pytest.raises(KeyError):
        score_risk_tables(r, {"short": [{100: DenseRiskModel(cov)}]}, np.arange(100, 102), risk=RiskConfig())


def test_factor_tables_use_the_compiled_solver_with_the_same_portfolios(gaussian):
    from riskstudy.evaluation.tables import long_only_solver
    from riskstudy.portfolio.optimize import min_variance_weights
    from riskstudy.risk.covariance import FactorRiskModel

    r, cov = gaussian
    rng = np.random.default_rng(1)
    days = np.arange(100, 160)
    table = {int(t): FactorRiskModel(exposures=rng.standard_normal((12, 3)), factor_cov=np.diag([2e-4, 1e-4, 5e-5]),
                                     specific_var=rng.uniform(1e-4, 4e-4, 12)) for t in days}
    solver = long_only_solver(table.values())
    assert solver is not min_variance_weights and long_only_solver([DenseRiskModel(cov)]) is min_variance_weights
    for t in days[:10]:
        w = solver(table[int(t)])
        assert w.min() >= 0 and np.isclose(w.sum(), 1)
        assert np.abs(w - min_variance_weights(table[int(t)])).max() < 1e-4
    q = score_risk_tables(r, {"factor": [table]}, days, risk=RiskConfig(n_random_portfolios=5))
    assert q.loc["factor", "n_days"] == len(days) and np.isfinite(q.loc["factor", "gmv_long_vol"])

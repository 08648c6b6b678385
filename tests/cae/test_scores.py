"""Out-of-sample R^2: identities (perfect fit 1, zero prediction 0), running means use the past only."""

from __future__ import annotations

import numpy as np
import pytest

from riskstudy.cae import scores


@pytest.fixture(scope="module")
def panel():
    rng = np.random.default_rng(0)
    T, N, P, K = 12, 40, 3, 2
    Z = rng.uniform(-1, 1, (T, N, P))
    beta = rng.normal(size=(T, N, K))
    f = rng.normal(0.01, 0.05, (T, K))
    mask = rng.random((T, N)) < 0.9
    R = np.where(mask, scores.predicted_returns(beta, f), np.nan)
    return Z, R, mask, beta, f


def test_perfect_fit_is_one_and_zero_prediction_is_zero(panel):
    Z, R, mask, beta, f = panel
    assert scores.r2_total(R, beta, f, mask) == pytest.approx(1.0)
    assert scores.r2(R, np.zeros_like(R), mask) == pytest.approx(0.0)
    assert scores.r2_pred(R, beta, np.zeros_like(f), mask) == pytest.approx(0.0)
    assert scores.portfolio_r2(Z, R, scores.predicted_returns(beta, f), mask) == pytest.approx(1.0)
    assert scores.portfolio_r2(Z, R, np.zeros_like(R), mask) == pytest.approx(0.0)
    out = scores.score_predictions(Z, R, mask, total=scores.predicted_returns(beta, f), predictive=np.zeros_like(R))
    assert out == pytest.approx({"r2_total": 1.0, "r2_pred": 0.0, "r2_total_portfolios": 1.0, "r2_pred_portfolios": 0.0})


def test_r2_is_one_minus_sse_over_uncentred_ss():
    y = np.array([[1.0, -1.0], [2.0, np.nan]])
    yhat = np.array([[0.5, -1.0], [2.0, 100.0]])
    assert scores.r2(y, yhat) == pytest.approx(1 - 0.25 / 6.0)  # NaN labels are not scored
    assert np.isnan(scores.r2(y, yhat, np.zeros_like(y, bool)))


def test_running_mean_uses_past_factors_only():
    f = np.array([[1.0], [3.0], [5.0], [100.0]])
    lam = scores.running_mean(f)
    assert np.isnan(lam[0, 0]) and lam[1:, 0].tolist() == [1.0, 2.0, 3.0]
    lam = scores.running_mean(f, prior=np.array([[2.0], [4.0]]))
    np.testing.assert_allclose(lam[:, 0], [3.0, 7 / 3, 2.5, 3.0])  # prior mean 3, then (2+4+1)/3, ...

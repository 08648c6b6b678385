import numpy as np
import pytest

from riskstudy.portfolio.metrics import max_drawdown, portfolio_metrics


def test_max_drawdown_known_series():
    assert max_drawdown(np.array([0.10, -0.50, 0.10])) == pytest.approx(0.5)
    assert max_drawdown(np.array([-0.2, 0.1])) == pytest.approx(0.2)  # loss from the initial wealth
    assert max_drawdown(np.array([0.01, 0.02])) == 0.0


def test_metrics_known_values():
    r = np.array([0.10, -0.50, 0.10, np.nan])
    m = portfolio_metrics(r, periods_per_year=3)
    assert m["n_periods"] == 3
    assert m["cumulative_return"] == pytest.approx(1.1 * 0.5 * 1.1 - 1)
    assert m["annual_return"] == pytest.approx(m["cumulative_return"])  # exactly one year
    assert m["max_drawdown"] == pytest.approx(0.5)
    assert m["calmar"] == pytest.approx(m["annual_return"] / 0.5)
    x = r[:3]
    assert m["sharpe"] == pytest.approx(x.mean() / x.std(ddof=1) * np.sqrt(3))
    assert m["sortino"] == pytest.approx(x.mean() / np.sqrt(0.25 / 3) * np.sqrt(3))
    assert m["annual_volatility"] == pytest.approx(x.std(ddof=1) * np.sqrt(3))
    assert np.isnan(m["turnover"])


def test_sharpe_of_constant_series_and_risk_free():
    m = portfolio_metrics(np.full(252, 0.001))
    assert m["annual_volatility"] == 0.0 and m["sharpe"] == np.inf
    assert np.isnan(portfolio_metrics(np.full(252, 0.001), risk_free=0.252)["sharpe"])  # 0 / 0
    assert m["annual_return"] == pytest.approx(1.001**252 - 1)


def test_turnover_from_weights_or_given():
    w = np.array([[0.5, 0.5], [1.0, 0.0], [1.0, 0.0]])
    m = portfolio_metrics(np.zeros(3) + 0.01, w)
    assert m["turnover"] == pytest.approx((0.5 + 0.0) / 2)
    given = portfolio_metrics(np.zeros(3) + 0.01, w, turnover=np.array([0.0, 0.3, 0.0]))
    assert given["turnover"] == pytest.approx(0.1)

import numpy as np
import pytest

from riskstudy.portfolio.backtest import backtest, embed, rebalance_daily
from riskstudy.risk.estimators import DenseRiskModel


@pytest.fixture(scope="module")
def returns():
    return np.random.default_rng(0).normal(0.0005, 0.01, (60, 8))


def _momentum(returns):
    """A strategy that looks at returns up to t only: long the 3 best trailing-5-day stocks."""

    def fn(t):
        score = returns[max(t - 4, 0) : t + 1].sum(axis=0)
        return embed(np.full(3, 1 / 3), np.argsort(score)[-3:], returns.shape[1])

    return fn


def test_next_day_returns_only(returns):
    res = backtest(_momentum(returns), returns, start=5)
    assert np.isnan(res.returns[:6]).all()
    for t in range(5, 59):
        assert res.returns[t + 1] == pytest.approx(res.weights[t] @ returns[t + 1])
    shocked = returns.copy()
    shocked[40:] = np.random.default_rng(1).normal(0, 0.05, shocked[40:].shape)  # change the future
    res2 = backtest(_momentum(shocked), shocked, start=5)
    np.testing.assert_array_equal(res2.weights[:40], res.weights[:40])
    np.testing.assert_array_equal(res2.returns[:40], res.returns[:40])
    assert not np.array_equal(res2.returns[40:], res.returns[40:])


def test_drift_between_rebalances_equals_buy_and_hold(returns):
    w0 = np.full(8, 1 / 8)
    res = backtest(lambda t: w0, returns, start=0, rebalance_every=1000)
    wealth = np.prod(1 + res.returns[1:])
    assert wealth == pytest.approx(w0 @ np.prod(1 + returns[1:], axis=0))
    assert (res.turnover == 0).all()
    res5 = backtest(lambda t: w0, returns, start=0, rebalance_every=5)
    assert (res5.turnover[np.r_[1:5, 6:10]] == 0).all() and res5.turnover[5] > 0
    np.testing.assert_array_equal(res5.weights[5], w0)
    drifted = res5.weights[4] * (1 + returns[5]) / (1 + res5.returns[5])
    assert res5.turnover[5] == pytest.approx(0.5 * np.abs(w0 - drifted).sum())
    daily = backtest(lambda t: w0, returns, start=0, cost_bps=10)
    gross = backtest(lambda t: w0, returns, start=0)
    np.testing.assert_allclose(gross.returns[2:] - daily.returns[2:], 2 * gross.turnover[1:-1] * 1e-3)


def test_missing_next_day_return(returns):
    r = returns.copy()
    r[11, 0] = np.nan
    w = np.r_[0.5, 0.5, np.zeros(6)]
    zero = backtest(lambda t: w, r, start=10, end=11)
    assert zero.returns[11] == pytest.approx(0.5 * r[11, 1])
    renorm = backtest(lambda t: w, r, start=10, end=11, missing="renormalise")
    assert renorm.returns[11] == pytest.approx(r[11, 1])


def test_invalid_arguments(returns):
    with pytest.raises(ValueError, match="start < end"):
        backtest(lambda t: np.zeros(8), returns, start=59)
    with pytest.raises(ValueError, match="expected"):
        backtest(lambda t: np.zeros(3), returns, start=0)


def test_rebalance_daily_holds_each_days_portfolio_for_the_next_day_only(returns):
    """One model per decision day, every strategy solved on it, held one day; a day without a model holds nothing."""
    T, N = returns.shape
    built: list[int] = []

    def model_at(t):
        built.append(t)
        if t == 12:
            return None
        assets = np.arange(t % 3, N)  # the universe changes
        return DenseRiskModel(np.diag(np.linspace(1, 2, assets.size)) * 1e-4 * (1 + t % 5), assets)

    seen = []
    runs = rebalance_daily(
        model_at, returns, range(10, 20),
        strategies={"gmv": lambda m: m.gmv_weights(), "equal": lambda m: np.full(m.n_assets, 1 / m.n_assets)},
        on_day=lambda t, m, w: seen.append((t, m.n_assets, sorted(w))),
    )
    assert built == list(range(10, 20))  # each day's model built once for all strategies and the scoring
    assert list(runs.days) == [t for t in range(10, 20) if t != 12]
    assert seen[0] == (10, N - 1, ["equal", "gmv"])
    for name, bt in runs.backtests.items():
        for t in runs.days:
            w = runs.weights[name][t]
            assert w.shape == (N,) and w.sum() == pytest.approx(1.0) and (w[: t % 3] == 0).all()
            assert bt.returns[t + 1] == w @ returns[t + 1]
            np.testing.assert_array_equal(bt.weights[t], w)
        assert bt.returns[13] == 0.0 and (bt.weights[12] == 0).all()  # no model on day 12: nothing held
        assert np.isnan(bt.returns[:11]).all() and np.isnan(bt.returns[21:]).all()
    eq = runs.backtests["equal"]
    assert eq.turnover[10] == 0.0 and eq.turnover[13] == pytest.approx(0.5)  # one-way: rebuilt from cash after day 12

"""The one backtester: the cap and bounds always hold, no return on or before a decision day is used, costs."""

from __future__ import annotations

import numpy as np
import pytest

from riskstudy.sharpe.backtest import drift, equity, metrics, run_strategy
from riskstudy.sharpe.strategies import equal_weight, from_table, ledoit_wolf_max_sharpe, ledoit_wolf_min_variance


@pytest.fixture(scope="module")
def returns():
    r = np.random.default_rng(3).normal(0.0005, 0.02, size=(300, 12))
    r[40:60, 2] = np.nan
    return r


def _random_target(seed):
    rng = np.random.default_rng(seed)

    def target(t, past):
        w = rng.dirichlet(np.full(past.shape[1], 0.3))
        return w

    return target


@pytest.mark.parametrize("cap", [0.02, 0.10, 0.3])
def test_cap_and_bounds_hold_at_every_rebalance(returns, cap):
    run = run_strategy(_random_target(1), returns, start=30, end=290, rebalance_every=7, max_change=cap, upper=0.5)
    days = sorted(run.decisions)
    assert days == list(range(30, 290, 7))
    for prev, t in zip(days, days[1:]):
        held = drift(run.decisions[prev], returns[prev + 1:t + 1])
        w = run.decisions[t]
        assert np.abs(w - held).max() <= cap + 1e-9
        # the bound holds unless drift carried a weight past it by more than the cap (then it moves by the cap)
        assert w.min() >= -1e-12 and np.all(w <= np.maximum(0.5, held - cap) + 1e-12) and abs(w.sum() - 1) < 1e-9
        # the drift the cap is measured from is the backtest's own (weights held over day t, decided at t - 1)
        assert np.allclose(run.result.weights[t - 1], drift(run.decisions[prev], returns[prev + 1:t]), atol=1e-12)
    assert run.n_capped > 0


def test_no_return_on_or_before_the_decision_day_is_used(returns):
    seen = {}

    def target(t, past):
        seen[t] = len(past)
        return equal_weight(t, past)

    run = run_strategy(target, returns, start=30, end=290, rebalance_every=21)
    assert all(n == t + 1 for t, n in seen.items())
    assert np.isnan(run.result.returns[:31]).all() and np.isfinite(run.result.returns[31:291]).all()
    w = run.decisions[30]
    assert np.isclose(run.result.returns[31], w @ returns[31])  # the first decision earns the next day's return
    poisoned = returns.copy()
    poisoned[100:] = np.random.default_rng(9).normal(0.01, 0.05, size=poisoned[100:].shape)
    a = run_strategy(ledoit_wolf_min_variance(60), returns, start=30, end=290, rebalance_every=21)
    b = run_strategy(ledoit_wolf_min_variance(60), poisoned, start=30, end=290, rebalance_every=21)
    assert all(np.array_equal(a.decisions[t], b.decisions[t]) for t in a.decisions if t < 100)
    assert np.array_equal(a.result.returns[:100], b.result.returns[:100], equal_nan=True)


def test_costs_are_charged_on_traded_weight(returns):
    table = {t: np.eye(12)[(t // 21) % 12] for t in range(30, 290)}
    free = run_strategy(from_table(table), returns, start=30, end=290, max_change=None, cost_bps=0.0)
    paid = run_strategy(from_table(table), returns, start=30, end=290, max_change=None, cost_bps=10.0)
    t = 51  # second rebalance: sells all of stock 1, buys all of stock 2 -> traded weight about 2
    traded = np.abs(paid.decisions[t] - drift(paid.decisions[30], returns[31:52])).sum()
    assert np.isclose(free.result.returns[t + 1] - paid.result.returns[t + 1], traded * 1e-3)
    assert np.isclose(paid.result.turnover[t], traded / 2)


def test_classical_rules_and_metrics(returns):
    past = returns[:200]
    w = ledoit_wolf_min_variance(100)(199, past)
    assert w.min() >= -1e-10 and np.isclose(w.sum(), 1)
    w = ledoit_wolf_max_sharpe(100, 100)(199, past)
    assert w.min() >= -1e-10 and np.isclose(w.sum(), 1)
    run = run_strategy(equal_weight, returns, start=30, end=290)
    m = metrics(run.result.returns, turnover=run.result.turnover[30:290])
    assert set(m) == {"cum_return", "ann_return", "vol", "max_drawdown", "sharpe", "calmar", "sortino", "turnover"}
    assert np.isclose(equity(run.result.returns, 10_000)[-1], 10_000 * (1 + m["cum_return"]))

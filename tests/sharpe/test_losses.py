"""The negative-Sharpe loss: buy-and-hold returns with drift, the Sharpe formula, and gradients that favour the
better asset."""

from __future__ import annotations

import numpy as np
import torch

from riskstudy.portfolio.metrics import portfolio_metrics
from riskstudy.sharpe.losses import holding_returns, negative_sharpe


def test_holding_returns_drift_like_a_buy_and_hold_portfolio():
    w = torch.tensor([[0.5, 0.5]], dtype=torch.float64)
    fut = torch.tensor([[[0.10, 0.0], [0.0, 0.10], [-0.05, 0.02]]], dtype=torch.float64)
    r = holding_returns(w, fut)[0]
    value = np.array([0.5 * 1.1 + 0.5, 0.5 * 1.1 + 0.5 * 1.1, 0.5 * 1.1 * 0.95 + 0.5 * 1.1 * 1.02])
    np.testing.assert_allclose(r.numpy(), value / np.r_[1.0, value[:-1]] - 1)


def test_loss_is_minus_the_annualised_sharpe_of_the_metrics_module():
    rng = np.random.default_rng(0)
    fut = torch.tensor(rng.normal(0.001, 0.01, (4, 21, 3)))
    w = torch.full((4, 3), 1 / 3, dtype=torch.float64)
    r = holding_returns(w, fut).reshape(-1).numpy()
    expected = portfolio_metrics(r, risk_free=0.02)["sharpe"]
    np.testing.assert_allclose(-negative_sharpe(w, fut).item(), expected, rtol=1e-5)  # eps in the denominator


def test_gradient_moves_weight_to_the_higher_sharpe_asset():
    rng = np.random.default_rng(1)
    bad = rng.normal(0.0, 0.01, (8, 21, 1))
    good = bad + 0.003  # same risk, higher return on every day: more weight on it raises every Sharpe ratio
    fut = torch.tensor(np.concatenate([good, bad], axis=2))
    logits = torch.zeros(8, 2, dtype=torch.float64, requires_grad=True)
    negative_sharpe(torch.softmax(logits, dim=1), fut).backward()
    assert (logits.grad[:, 0] < 0).all() and (logits.grad[:, 1] > 0).all()

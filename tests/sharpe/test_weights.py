"""The bounded weight layer: sums to 1, respects the bounds, is the softmax without them, and has gradients."""

from __future__ import annotations

import pytest
import torch

from riskstudy.sharpe.weights import bounded_softmax


def test_plain_softmax_without_bounds():
    z = torch.randn(3, 7)
    torch.testing.assert_close(bounded_softmax(z), torch.softmax(z, dim=-1))


@pytest.mark.parametrize(("lower", "upper"), [(0.0, 0.1), (0.01, 0.05), (-0.05, 0.2)])
def test_bounds_and_budget(lower, upper):
    torch.manual_seed(0)
    z = 5 * torch.randn(16, 50)
    w = bounded_softmax(z, lower=lower, upper=upper)
    torch.testing.assert_close(w.sum(-1), torch.ones(16))
    assert (w >= lower - 1e-6).all() and (w <= upper + 1e-5).all()  # float32 round-off of the redistribution
    order = torch.argsort(z, dim=-1)
    assert (torch.diff(torch.gather(w, 1, order), dim=-1) >= -1e-5).all()  # still monotone in the scores


def test_gradients_and_infeasible_bounds():
    z = torch.randn(2, 30, requires_grad=True)
    (bounded_softmax(z, upper=0.05) * torch.arange(30.0)).sum().backward()
    assert torch.isfinite(z.grad).all() and z.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="cannot hold"):
        bounded_softmax(torch.zeros(1, 10), upper=0.05)

"""SAM (``pytorch-optimizer``'s, as the Sharpe section uses it): the step is the base step with the gradient
taken at the point reached by ascending rho along the normalised gradient."""

from __future__ import annotations

import pytest
import torch
from pytorch_optimizer import SAM


def test_sam_step_is_sgd_with_the_perturbed_gradient():
    a = torch.tensor([3.0, 1.0])
    w = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
    loss_fn = lambda: (a * w ** 4).sum()  # noqa: E731  (non-quadratic: the perturbed gradient differs)
    opt = SAM([w], torch.optim.SGD, rho=0.1, lr=0.01)
    w0 = w.detach().clone()
    loss_fn().backward()
    g0 = w.grad.detach().clone()
    w_pert = w0 + 0.1 * g0 / g0.norm()
    g_pert = 4 * a * w_pert ** 3

    def closure():
        opt.zero_grad()
        loss = loss_fn()
        loss.backward()
        return loss

    opt.step(closure)
    torch.testing.assert_close(w.detach(), w0 - 0.01 * g_pert)


def test_sam_lowers_the_loss_and_needs_a_closure():
    torch.manual_seed(0)
    x, y = torch.randn(64, 3), torch.randn(64, 1)
    model = torch.nn.Linear(3, 1)
    opt = SAM(model.parameters(), torch.optim.SGD, rho=0.05, lr=0.05, momentum=0.9)
    loss = lambda: torch.mean((model(x) - y) ** 2)  # noqa: E731
    start = loss().item()

    def closure():
        opt.zero_grad()
        out = loss()
        out.backward()
        return out

    for _ in range(50):
        opt.zero_grad()
        loss().backward()
        opt.step(closure)
    assert loss().item() < start
    with pytest.raises(Exception, match="(?i)closure"):
        opt.step()
    with pytest.raises(ValueError, match="rho"):
        SAM(model.parameters(), torch.optim.SGD, rho=-0.1, lr=0.1)

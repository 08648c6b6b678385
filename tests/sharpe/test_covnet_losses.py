"""ZCA whitening identities and the covariance losses: minimal at the true covariance, larger when risk is under-
or over-predicted, gradients through the eigendecomposition."""

from __future__ import annotations

import numpy as np
import torch

from riskstudy.sharpe.covnet_losses import factor_covariance_loss, q_statistic, specific_variance_loss, zca_whiten


def _sample(T=4000, K=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    A = torch.randn(K, K, generator=g, dtype=torch.float64)
    cov = A @ A.T + 0.5 * torch.eye(K, dtype=torch.float64)
    f = torch.randn(T, K, generator=g, dtype=torch.float64) @ torch.linalg.cholesky(cov).T
    return cov, f


def test_zca_is_symmetric_inverse_square_root():
    cov, f = _sample(T=5)
    w = zca_whiten(cov.expand(5, 3, 3), f)
    lam, U = torch.linalg.eigh(cov)
    P = U @ torch.diag(lam.rsqrt()) @ U.T
    torch.testing.assert_close(w, f @ P.T)
    torch.testing.assert_close(P @ cov @ P.T, torch.eye(3, dtype=torch.float64))


def test_loss_is_smallest_near_the_true_covariance():
    cov, f = _sample()
    T = len(f)
    at = lambda c: factor_covariance_loss(c.expand(T, 3, 3), f)[0].item()  # noqa: E731
    best = at(cov)
    assert best < at(0.5 * cov) and best < at(2.0 * cov) and best < at(torch.diag(torch.diagonal(cov)))
    assert abs(best - 1.0) < 0.1  # diagonal part ~1, off-diagonal ~0 at the truth
    assert at(0.5 * cov) - best > 0  # under-predicted risk costs
    assert q_statistic(torch.tensor(1.0)).item() == 1.0


def test_gradients_flow_through_eigh_to_the_features():
    cov, f = _sample(T=64)
    E = torch.linalg.cholesky(cov).clone().requires_grad_(True)
    loss, parts = factor_covariance_loss((E @ E.T).expand(64, 3, 3), f)
    loss.backward()
    assert torch.isfinite(E.grad).all() and E.grad.abs().sum() > 0 and set(parts) == {"diag", "offdiag", "whitened_var"}


def test_specific_variance_loss():
    g = torch.Generator().manual_seed(1)
    d = torch.rand(1, 50, generator=g, dtype=torch.float64) + 0.5
    u = torch.randn(2000, 50, generator=g, dtype=torch.float64) * d.sqrt()
    mask = torch.ones_like(u, dtype=torch.bool)
    truth = specific_variance_loss(d.expand_as(u), u, mask).item()
    assert truth < specific_variance_loss(0.5 * d.expand_as(u), u, mask).item()
    assert truth < specific_variance_loss(3.0 * d.expand_as(u), u, mask).item()
    mask[:, :10] = False
    assert np.isfinite(specific_variance_loss(d.expand_as(u), u * torch.where(mask, 1.0, float("nan")), mask).item())

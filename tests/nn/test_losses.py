"""Tests for riskstudy.nn.losses: WLS R^2, collinearity penalty, per-day loss."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import torch

from riskstudy.nn.losses import drm_day_losses, factor_penalty, label_valid, regression_r2



@pytest.fixture(autouse=True)
def _float64() -> Iterator[None]:
    prev = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(prev)


def _wls_r2_reference(f: np.ndarray, y: np.ndarray, w: np.ndarray) -> float:
    keep = w > 0
    x = np.column_stack([np.ones(keep.sum()), f[keep]])
    sw = np.sqrt(w[keep])
    beta, *_ = np.linalg.lstsq(x * sw[:, None], y[keep] * sw, rcond=None)
    resid = y[keep] - x @ beta
    return 1 - (w[keep] * resid**2).sum() / (w[keep] * y[keep] ** 2).sum()


def test_r2_matches_numpy_wls_per_day_and_horizon() -> None:
    g = torch.Generator().manual_seed(0)
    B, M, K, H = 3, 40, 4, 5
    f, y = torch.randn(B, M, K, generator=g), torch.randn(B, M, H, generator=g)
    w = torch.rand(B, M, H, generator=g) * (torch.rand(B, M, H, generator=g) < 0.8)
    r2 = regression_r2(f, y, w, ridge=0.0)
    ref = np.array([[_wls_r2_reference(f[b].numpy(), y[b, :, h].numpy(), w[b, :, h].numpy()) for h in range(H)]
                    for b in range(B)])
    np.testing.assert_allclose(r2.numpy(), ref, rtol=1e-9, atol=1e-12)


def test_r2_of_perfect_fit_is_one_and_of_orthogonal_factors_is_zero() -> None:
    g = torch.Generator().manual_seed(1)
    M, K = 50, 3
    f = torch.randn(1, M, K, generator=g)
    w = torch.rand(1, M, 1, generator=g) + 0.5
    y_fit = 0.01 + f @ torch.tensor([[0.5], [-1.0], [2.0]])
    assert regression_r2(f, y_fit, w).item() == pytest.approx(1.0, abs=1e-9)
    # y orthogonal (under W) to [1, f]: project a random vector off the design.
    x = torch.cat([torch.ones(M, 1), f[0]], dim=1)
    v = torch.randn(M, 1, generator=g)
    wd = torch.diag(w[0, :, 0])
    y_orth = v - x @ torch.linalg.solve(x.T @ wd @ x, x.T @ wd @ v)
    assert regression_r2(f, y_orth.unsqueeze(0), w).item() == pytest.approx(0.0, abs=1e-9)


def test_penalty_closed_forms() -> None:
    g = torch.Generator().manual_seed(2)
    N, K = 30, 4
    q, _ = torch.linalg.qr(torch.randn(N, K, generator=g))  # F'F = I -> tr = K -> K * N / K = N
    assert factor_penalty(q.unsqueeze(0), torch.ones(1, N, dtype=torch.bool), ridge=0.0).item() == pytest.approx(N)
    f = q * N**0.5  # F'F = N I (unit-variance, uncorrelated) -> tr = K / N -> 1
    assert factor_penalty(f.unsqueeze(0), torch.ones(1, N, dtype=torch.bool), ridge=0.0).item() == pytest.approx(1.0)
    # non-member rows (garbage) are ignored
    padded = torch.cat([f, 1e3 * torch.randn(5, K, generator=g)]).unsqueeze(0)
    mask = torch.cat([torch.ones(N, dtype=torch.bool), torch.zeros(5, dtype=torch.bool)]).unsqueeze(0)
    assert factor_penalty(padded, mask, ridge=0.0).item() == pytest.approx(1.0)


def test_day_losses_combine_terms_and_flag_unidentified_days() -> None:
    g = torch.Generator().manual_seed(3)
    B, M, K, H = 2, 30, 2, 3
    f = torch.randn(B, M, K, generator=g)
    y = torch.randn(B, M, H, generator=g)
    y_mask = torch.ones(B, M, H, dtype=torch.bool)
    y_mask[1, K + 1:] = False  # day 1: only K + 1 labels per horizon -> not identified
    mask = torch.ones(B, M, dtype=torch.bool)
    weight = torch.rand(B, M, generator=g) + 0.1
    d = drm_day_losses(f, y=y, y_mask=y_mask, mask=mask, weight=weight, lambda_=0.01)
    assert d.valid.tolist() == [True, False]
    w = weight.unsqueeze(-1) * y_mask
    r2 = regression_r2(f, y, w)
    assert d.r2[0].item() == pytest.approx(r2[0].mean().item())
    assert d.loss[0].item() == pytest.approx(-r2[0].mean().item() + 0.01 * factor_penalty(f, mask)[0].item())
    assert d.loss[1].item() == 0.0
    assert d.mean("loss").item() == pytest.approx(d.loss[0].item())
    assert label_valid(w, n_factors=K).tolist() == [[True] * H, [False] * H]

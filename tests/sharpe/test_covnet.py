"""The covariance network: the regression is WLS, F is PSD, the next day's returns touch only the regression
outputs, and training on the whitening loss lowers it."""

from __future__ import annotations

import numpy as np
import torch

from riskstudy.nn.encoders import GRUEncoder
from riskstudy.sharpe.covnet import CovNet, factor_portfolios
from riskstudy.sharpe.covnet_losses import factor_covariance_loss, specific_variance_loss


def _batch(B=6, N=20, P0=4, L=10, P=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    prior = torch.randn(B, N, P0, generator=g)
    seq = torch.randn(B, N, L, P, generator=g)
    w = torch.rand(B, N, generator=g) + 0.5
    mask = torch.ones(B, N, dtype=torch.bool)
    mask[:, -3:] = False
    r = 0.01 * torch.randn(B, N, generator=g)
    return prior, seq, w, mask, r


def _net(seed=0):
    torch.manual_seed(seed)
    return CovNet(n_prior=4, n_factors=3, encoder=GRUEncoder(n_features=5, hidden_size=8, num_layers=1), hidden=16)


def test_factor_portfolios_are_weighted_least_squares():
    X = torch.randn(2, 30, 3, dtype=torch.float64)
    w = torch.rand(2, 30, dtype=torch.float64) + 0.1
    r = torch.randn(2, 30, dtype=torch.float64)
    f = (factor_portfolios(X, w, ridge=0.0) @ r[..., None]).squeeze(-1)
    for b in range(2):
        sw = w[b].sqrt().numpy()
        ref = np.linalg.lstsq(sw[:, None] * X[b].numpy(), sw * r[b].numpy(), rcond=None)[0]
        np.testing.assert_allclose(f[b].numpy(), ref, rtol=1e-8)


def test_outputs_psd_and_no_look_ahead():
    prior, seq, w, mask, r = _batch()
    net = _net().eval()
    out = net(prior, seq, w, mask, r)
    assert out.factor_cov.shape == (6, 3, 3) and out.specific_var.shape == (6, 20)
    assert (torch.linalg.eigvalsh(out.factor_cov) > -1e-6).all() and (out.specific_var > 0).all()
    assert torch.isnan(out.residuals[:, -3:]).all() and (out.exposures[:, -3:] == 0).all()
    out2 = net(prior, seq, w, mask, r + 1.0)  # other next-day returns: the forecasts are unchanged
    torch.testing.assert_close(out2.factor_cov, out.factor_cov)
    torch.testing.assert_close(out2.specific_var, out.specific_var)
    assert not torch.allclose(out2.factor_returns, out.factor_returns)


def test_training_lowers_the_whitening_loss():
    prior, seq, w, mask, r = _batch(B=32, seed=1)
    net = _net(1)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)

    def loss_fn():
        out = net(prior, seq, w, mask, r)
        lf, _ = factor_covariance_loss(out.factor_cov, out.factor_returns)
        return lf + specific_variance_loss(out.specific_var, out.residuals, mask)

    start = loss_fn().item()
    for _ in range(60):
        opt.zero_grad()
        loss = loss_fn()
        loss.backward()
        opt.step()
    assert loss_fn().item() < start

"""Tests for riskstudy.nn.drm: config validation, GAT, normalisation, smoothing, network."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from riskstudy.config import ConfigError, DRMParams
from riskstudy.nn.drm import (
    NEG_SLOPE,
    DeepRiskModel,
    StockGAT,
    _dropout_bytes,
    _keep_mask,
    normalize_exposures,
    smooth_exposures,
)


@pytest.mark.parametrize(("field", "value"), [
    ("n_factors", 3), ("n_factors", 0), ("hidden_size", -1), ("num_layers", 1.5), ("horizon", 0),
    ("batch_days", 0), ("attn_dropout", 1.0), ("rho", -0.1), ("lambda_", -1.0), ("lr", 0.0),
    ("train_days_per_epoch", 0), ("gat_chunk_days", 0), ("seed", -1), ("device", "nonsense"), ("gat", 1),
])
def test_config_validation_names_the_field(field: str, value: object) -> None:
    key = "lambda" if field == "lambda_" else field  # the params.yaml key
    with pytest.raises(ConfigError, match=f"drm.{key}"):
        DRMParams(n_factors=4).with_overrides(**{field: value})


def test_config_roundtrip_and_unknown_fields() -> None:
    c = DRMParams(n_factors=6, train_days_per_epoch=128)
    assert DRMParams.model_validate(c.to_dict()) == c
    with pytest.raises(ConfigError, match="bogus"):
        c.with_overrides(bogus=1)
    assert DRMParams(n_factors=2, device="cpu").resolved_device() == torch.device("cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="drm.device"):
            DRMParams(n_factors=2, device="cuda").resolved_device()


def _naive_gat(gat: StockGAT, x: torch.Tensor, mask: torch.Tensor, keep: torch.Tensor | None) -> torch.Tensor:
    """Textbook dense GAT: masked softmax over j of LeakyReLU(a1.Wx_i + a2.Wx_j)/sqrt(2P)."""
    z = (x @ gat.W.T).transpose(1, 2)  # (B, L, M, P)
    s = z @ gat.a.T
    logits = F.leaky_relu(s[..., 0].unsqueeze(-1) + s[..., 1].unsqueeze(-2), NEG_SLOPE) / math.sqrt(2 * x.shape[-1])
    alpha = torch.softmax(logits.masked_fill(~mask[:, None, None, :], -math.inf), dim=-1)
    if keep is not None:
        alpha = alpha * keep / (1 - gat.dropout)
    return F.leaky_relu(alpha @ z, NEG_SLOPE).transpose(1, 2)


@pytest.mark.parametrize("training", [False, True])
def test_gat_kernel_matches_dense_reference_values_and_gradients(make_batch, training: bool) -> None:
    b = make_batch(n_days=5, n_stocks=9, seq_len=4)
    torch.manual_seed(0)
    gat = StockGAT(n_features=5, dropout=0.5, chunk_days=2).double().train(training)
    with torch.no_grad():
        gat.W.add_(0.2 * torch.randn(5, 5, dtype=torch.float64))
    x1, x2 = b.x.clone().requires_grad_(), b.x.clone().requires_grad_()
    rng = torch.get_rng_state()
    out = gat(x1, b.mask)
    assert out.shape == b.x.shape
    keep = None
    if training:  # replay the per-chunk seeds the layer drew; a chunk is 2 days x 4 steps = 8 graphs
        torch.set_rng_state(rng)
        sizes = [8, 8, 4]
        seeds = [int(torch.randint(0, 2**62, ())) for _ in sizes]
        keep = torch.cat([_keep_mask(_dropout_bytes(torch.Size((n, 9, 9)), seed=sd, device=torch.device("cpu")),
                                     p=0.5, dtype=torch.float64) for n, sd in zip(sizes, seeds)]).view(5, 4, 9, 9)
        assert 0.3 < keep.mean().item() < 0.7
    ref = _naive_gat(gat, x2, b.mask, keep)
    torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12)
    w = torch.randn_like(out)
    grads = torch.autograd.grad((out * w).sum(), [x1, gat.W, gat.a])
    ref_grads = torch.autograd.grad((ref * w).sum(), [x2, gat.W, gat.a])
    for g, r in zip(grads, ref_grads):
        torch.testing.assert_close(g, r, rtol=1e-10, atol=1e-12)


def test_gat_kernel_ties_wide_scores_and_empty_days(make_batch) -> None:
    """Tied scores, scores spanning the exp range and a day without members: still the dense layer."""
    b = make_batch(n_days=3, n_stocks=11, seq_len=3)
    torch.manual_seed(0)
    gat = StockGAT(n_features=5, dropout=0.0, chunk_days=2).double().train()
    x = b.x.clone()
    x[:, 2:4] = x[:, 1:2]  # stocks 1-3 identical: exactly tied scores (the kink u = 0 itself has measure 0)
    x[1] *= 40.0  # wide scores: weights down to exp(-100s), the floored regime
    mask = b.mask.clone()
    mask[2] = False
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    out = gat(x1, mask)
    assert torch.isfinite(out).all()
    keep = mask[:2]
    ref = _naive_gat(gat, x2[:2], keep, None)
    torch.testing.assert_close(out[:2], ref, rtol=1e-10, atol=1e-12)
    w = torch.randn_like(ref)
    g = torch.autograd.grad((out[:2] * w).sum(), [x1, gat.W, gat.a])
    r = torch.autograd.grad((ref * w).sum(), [x2, gat.W, gat.a])
    torch.testing.assert_close(g[0][:2], r[0][:2], rtol=1e-8, atol=1e-10)
    for gi, ri in zip(g[1:], r[1:]):
        torch.testing.assert_close(gi, ri, rtol=1e-8, atol=1e-10)


def test_keep_mask_rate_and_reproducibility() -> None:
    shape, cpu = torch.Size((4, 50, 50)), torch.device("cpu")
    bytes_ = _dropout_bytes(shape, seed=7, device=cpu)
    assert torch.equal(bytes_, _dropout_bytes(shape, seed=7, device=cpu))
    assert not torch.equal(bytes_, _dropout_bytes(shape, seed=8, device=cpu))
    for p in (0.5, 0.25):
        keep = _keep_mask(bytes_, p=p, dtype=torch.float32)
        assert set(keep.unique().tolist()) <= {0.0, 1.0}
        assert abs(keep.mean().item() - (1 - p)) < 0.02


def test_gat_never_mixes_days_and_ignores_non_members(make_batch) -> None:
    b = make_batch(n_days=4, n_stocks=10, seq_len=3)
    gat = StockGAT(n_features=5, dropout=0.0, chunk_days=3).double()
    base = gat(b.x, b.mask)
    x = b.x.clone()
    x[2] += 5 * torch.randn_like(x[2])  # perturb day 2 only (spans two chunks' boundary logic)
    out = gat(x, b.mask)
    others = [0, 1, 3]
    torch.testing.assert_close(out[others], base[others], rtol=0, atol=0)
    assert not torch.allclose(out[2][b.mask[2]], base[2][b.mask[2]])
    # a non-member's inputs do not move any member's output on that day
    day, stock = next((d, int(s)) for d in range(4) for s in torch.nonzero(~b.mask[d]).flatten())
    x = b.x.clone()
    x[day, stock] = 1e3
    out = gat(x, b.mask)
    keep = b.mask[day]
    torch.testing.assert_close(out[day][keep], base[day][keep], rtol=0, atol=0)


@pytest.mark.parametrize("gat", [True, False])
def test_model_shapes_day_isolation_and_non_member_invariance(make_batch, gat: bool) -> None:
    b = make_batch(n_days=3, n_stocks=15, seq_len=20)
    torch.manual_seed(0)
    model = DeepRiskModel(DRMParams(n_factors=6, gat=gat, attn_dropout=0.0)).double().eval()
    f = model(b.x, b.mask, b.size)
    assert f.shape == (3, 15, 6)
    assert torch.all(f[~b.mask] == 0)
    x = b.x.clone()
    x[0] += 1.0
    x[~b.mask] = float("nan")  # non-member inputs may hold anything
    f2 = model(x, b.mask, b.size)
    torch.testing.assert_close(f2[1:], f[1:], rtol=0, atol=1e-12)
    assert torch.isfinite(f2).all()


def _lower_median(v: np.ndarray) -> float:
    return float(np.sort(v)[(len(v) - 1) // 2])


def test_normalisation_matches_definition() -> None:
    g = torch.Generator().manual_seed(0)
    B, M, K = 3, 41, 2
    f = torch.randn(B, M, K, generator=g, dtype=torch.float64)
    f[:, 0] = 50.0  # outlier, clipped
    mask = torch.rand(B, M, generator=g) < 0.8
    size = torch.where(mask, torch.rand(B, M, generator=g, dtype=torch.float64) + 0.1, 0.0)
    z = normalize_exposures(f, mask=mask, size=size)
    assert torch.all(z[~mask] == 0)
    for b in range(B):
        m, s = mask[b].numpy(), size[b].numpy()
        for k in range(K):
            v = f[b, :, k].numpy()[m]
            med = _lower_median(v)
            mad = _lower_median(np.abs(v - med))
            r = np.clip((v - med) / (1.4826 * mad), -3, 3)
            r = r - (s[m] * r).sum() / s[m].sum()
            r = r / np.sqrt(r.var() + 1e-6)
            np.testing.assert_allclose(z[b, :, k].numpy()[m], r, rtol=1e-10)
            assert (s[m] * r).sum() == pytest.approx(0.0, abs=1e-10)
            assert r.std() == pytest.approx(1.0, abs=1e-5)


def test_smoothing_scan_equals_sequential_definition() -> None:
    g = torch.Generator().manual_seed(0)
    B, M, K, rho = 6, 5, 2, 0.7
    f = torch.randn(B, M, K, generator=g, dtype=torch.float64, requires_grad=True)
    mask = torch.rand(B, M, generator=g) < 0.7
    prev = torch.randn(M, K, generator=g, dtype=torch.float64)
    prev_valid = torch.tensor([True, False, True, True, False])
    continues = torch.tensor([True, True, True, False, True, True])  # gap before day 3
    out, last, last_valid = smooth_exposures(f, mask=mask, prev=prev, prev_valid=prev_valid,
                                             continues=continues, rho=rho)
    state = {i: prev[i] for i in range(M) if prev_valid[i]}
    for b in range(B):
        new = {}
        for i in range(M):
            if not mask[b, i]:
                assert torch.all(out[b, i] == f[b, i])  # 0 off-mask in practice; passes through
                continue
            expect = rho * state[i] + (1 - rho) * f[b, i] if (i in state and continues[b]) else f[b, i]
            torch.testing.assert_close(out[b, i], expect)
            new[i] = expect.detach()
        state = new
    assert last_valid.tolist() == mask[-1].tolist()
    # stop-gradient: each day's output depends on that day's input only
    (grad,) = torch.autograd.grad(out[3:].sum(), f)
    assert torch.all(grad[:3] == 0)

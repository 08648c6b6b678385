"""TCN and Transformer encoders: shapes, causality (the output at a step never sees later steps)."""

from __future__ import annotations

import pytest
import torch

from riskstudy.nn.tcn import TCNEncoder
from riskstudy.nn.transformer import TransformerSeqEncoder, sinusoidal_positions


@pytest.mark.parametrize("make", [lambda: TCNEncoder(n_features=6, hidden_size=8, num_layers=3),
                                  lambda: TransformerSeqEncoder(n_features=6, hidden_size=8, num_layers=2, n_heads=2)])
def test_shape_and_last_step_depends_on_the_whole_window(make):
    torch.manual_seed(0)
    enc = make().eval()
    x = torch.randn(4, 12, 6)
    out = enc(x)
    assert out.shape == (4, enc.out_features)
    y = x.clone()
    y[:, -1] += 1.0  # the last step moves the output
    assert not torch.allclose(enc(y), out)


def test_tcn_never_sees_the_future_and_sees_exactly_its_receptive_field():
    torch.manual_seed(0)
    enc = TCNEncoder(n_features=2, hidden_size=3, num_layers=3, kernel_size=3).eval()
    assert enc.receptive_field == 29
    x = torch.randn(1, 40, 2)
    y = x.clone()
    y[:, 26:] += 5.0  # pytorch-tcn's full output (S, L, H): steps before 26 are unchanged
    a, b = enc.tcn(x), enc.tcn(y)
    assert torch.allclose(a[:, :26], b[:, :26]) and not torch.allclose(a[:, 26:], b[:, 26:])
    wide = TCNEncoder(n_features=2, hidden_size=32, num_layers=3, kernel_size=3).eval()
    z = torch.randn(8, 40, 2, requires_grad=True)  # the last step's gradient reaches steps L - rf .. L - 1 only
    wide(z).sum().backward()
    seen = torch.nonzero(z.grad.abs().sum(dim=(0, 2)) > 0).flatten().tolist()
    assert seen == list(range(40 - wide.receptive_field, 40))


def test_transformer_prefix_is_causal_and_positions_are_sinusoids():
    torch.manual_seed(0)
    enc = TransformerSeqEncoder(n_features=3, hidden_size=8, num_layers=1, n_heads=2).eval()
    x = torch.randn(2, 8, 3)
    y = x.clone()
    y[:, 5:] += 3.0
    a, b = enc.sequence(x), enc.sequence(y)
    assert torch.allclose(a[:, :5], b[:, :5], atol=1e-6) and not torch.allclose(a[:, 5:], b[:, 5:])
    torch.testing.assert_close(enc(x[:, :5]), a[:, 4])  # step 4 of the window = the 5-step prefix's output
    pe = sinusoidal_positions(4, 6)
    assert pe.shape == (4, 6) and torch.allclose(pe[0, 0::2], torch.zeros(3)) and torch.allclose(pe[0, 1::2], torch.ones(3))


def test_patched_transformer_tokens_and_causality():
    torch.manual_seed(0)
    enc = TransformerSeqEncoder(n_features=3, hidden_size=8, num_layers=1, n_heads=2, patch=3).eval()
    x = torch.randn(4, 12, 3)
    assert enc.sequence(x).shape == (4, 4, 8) and enc(x).shape == (4, 8)
    y = x.clone()
    y[:, 9:] += 1.0  # the last token's steps: earlier tokens do not move
    assert torch.allclose(enc.sequence(x)[:, :3], enc.sequence(y)[:, :3], atol=1e-6)
    assert not torch.allclose(enc(x), enc(y))
    with pytest.raises(ValueError, match="multiple of patch"):
        enc(torch.randn(2, 10, 3))

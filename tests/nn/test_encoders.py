"""Sequence encoders: one interface, (S, L, P) -> (S, out_features)."""

import pytest
import torch

from riskstudy.nn.encoders import ENCODERS, GRUEncoder, make_encoder


def test_gru_encoder_is_attention_pooling_and_last_state():
    torch.manual_seed(0)
    enc = GRUEncoder(n_features=5, hidden_size=8, num_layers=2)
    x = torch.randn(7, 20, 5)
    z = enc(x)
    assert z.shape == (7, enc.out_features) == (7, 16)
    h, _ = enc.gru(x)
    torch.testing.assert_close(z[:, 8:], h[:, -1])
    alpha = torch.softmax(enc.score(h), dim=1)
    torch.testing.assert_close(z[:, :8], (alpha * h).sum(1))
    assert torch.allclose(alpha.sum(1), torch.ones(7, 1))


def test_every_encoder_keeps_the_interface():
    for kind in ENCODERS:
        enc = make_encoder(kind, n_features=3, hidden_size=4, num_layers=1, seq_len=6)
        assert enc(torch.randn(2, 6, 3)).shape == (2, enc.out_features)


def test_linear_encoder_makes_the_head_a_linear_map_of_the_inputs():
    from riskstudy.nn.drm import FactorHead

    head = FactorHead(n_features=3, hidden_size=4, num_layers=1, n_out=2, encoder="linear", seq_len=6)
    a, b = torch.randn(5, 6, 3), torch.randn(5, 6, 3)
    bias = head(torch.zeros(1, 6, 3))
    torch.testing.assert_close(head(a + 2 * b) - bias, (head(a) - bias) + 2 * (head(b) - bias))
    with pytest.raises(ValueError, match="20 x 3|6 x 3"):
        head(torch.randn(5, 7, 3))


def test_unknown_encoder_names_the_known_ones():
    with pytest.raises(ValueError, match="gru"):
        make_encoder("lstm", n_features=3, hidden_size=4, num_layers=1)

"""Checkpointing: identical gradients (dropout included) and at least 40% less saved activation memory."""

from __future__ import annotations

import torch
from torch import nn

from riskstudy.nn.checkpointing import Checkpointed, maybe_checkpointed, saved_activation_bytes
from riskstudy.nn.encoders import GRUEncoder
from riskstudy.nn.tft import TFTEncoder


def _grads(model: nn.Module, x: torch.Tensor, seed: int = 0) -> list[torch.Tensor]:
    model.zero_grad()
    torch.manual_seed(seed)
    model(x).pow(2).sum().backward()
    return [p.grad.clone() for p in model.parameters()]


def _pair(make):
    torch.manual_seed(0)
    plain = make()
    ck = Checkpointed(make())
    ck.module.load_state_dict(plain.state_dict())
    return plain, ck


def test_identical_gradients_with_dropout():
    make = lambda: nn.Sequential(nn.Linear(6, 32), nn.ReLU(), nn.Dropout(0.3), nn.Linear(32, 4))  # noqa: E731
    plain, ck = _pair(make)
    x = torch.randn(16, 6)
    for a, b in zip(_grads(plain, x), _grads(ck, x)):
        assert torch.equal(a, b)


def test_identical_gradients_of_the_encoders():
    x = torch.randn(12, 20, 5)
    for make in (lambda: GRUEncoder(n_features=5, hidden_size=8, num_layers=2),
                 lambda: TFTEncoder(n_features=5, hidden_size=8, n_heads=2, dropout=0.1)):
        plain, ck = _pair(make)
        for a, b in zip(_grads(plain, x), _grads(ck, x)):
            torch.testing.assert_close(a, b, rtol=0, atol=0)
        assert ck.out_features == plain.out_features


def test_checkpointing_cuts_saved_activations_by_at_least_40_percent():
    x = torch.randn(64, 20, 5)
    plain, ck = _pair(lambda: TFTEncoder(n_features=5, hidden_size=16, n_heads=2))
    a = saved_activation_bytes(lambda: plain(x).sum())
    b = saved_activation_bytes(lambda: ck(x).sum())
    assert b <= 0.6 * a, (a, b)


def test_eval_mode_and_disabled_are_the_plain_module():
    m = nn.Linear(3, 2)
    assert maybe_checkpointed(m, False) is m
    ck = Checkpointed(m).eval()
    x = torch.randn(4, 3)
    assert torch.equal(ck(x), m(x))

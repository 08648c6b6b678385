"""TFT encoder blocks: shapes, variable weights on the simplex, causal attention, and learning a simple target."""

from __future__ import annotations

import torch

from riskstudy.nn.tft import GatedResidualNetwork, InterpretableMultiHeadAttention, TFTEncoder, VariableSelection


def test_encoder_shape_and_inspectable_weights():
    torch.manual_seed(0)
    enc = TFTEncoder(n_features=5, hidden_size=8, num_layers=1, n_heads=2)
    out = enc(torch.randn(7, 20, 5))
    assert out.shape == (7, enc.out_features) == (7, 8)
    v, a = enc.last_weights["variables"], enc.last_weights["attention"]
    assert v.shape == (7, 20, 5) and torch.allclose(v.sum(-1), torch.ones(7, 20))
    assert a.shape == (7, 20, 20) and torch.allclose(a.sum(-1), torch.ones(7, 20))
    assert torch.all(a.triu(1) == 0)  # causal: no step attends to a later one


def test_last_output_ignores_nothing_but_earlier_steps_cannot_see_later_ones():
    torch.manual_seed(1)
    att = InterpretableMultiHeadAttention(8, 2)
    h = torch.randn(3, 6, 8)
    y, _ = att(h)
    h2 = h.clone()
    h2[:, 4:] += 1.0
    y2, _ = att(h2)
    assert torch.allclose(y[:, :4], y2[:, :4]) and not torch.allclose(y[:, 4:], y2[:, 4:])


def test_grn_skip_projects_and_variable_selection_shapes():
    g = GatedResidualNetwork(4, 8, 6)
    assert g(torch.randn(2, 3, 4)).shape == (2, 3, 6)
    vs = VariableSelection(3, 8)
    s, w = vs(torch.randn(2, 5, 3))
    assert s.shape == (2, 5, 8) and w.shape == (2, 5, 3)


def test_tft_learns_which_variable_matters():
    torch.manual_seed(0)
    x = torch.randn(256, 10, 4)
    y = x[:, -3:, 2].sum(dim=1, keepdim=True)  # only variable 2, last steps
    enc = TFTEncoder(n_features=4, hidden_size=8, n_heads=2)
    head = torch.nn.Linear(8, 1)
    opt = torch.optim.Adam([*enc.parameters(), *head.parameters()], lr=1e-2)
    first = None
    for _ in range(150):
        loss = torch.mean((head(enc(x)) - y) ** 2)
        first = loss.item() if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.2 * first
    importance = enc.last_weights["variables"].mean(dim=(0, 1))
    assert int(importance.argmax()) == 2

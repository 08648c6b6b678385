"""Sequence encoders: a stock's ``L``-step sequence of ``P`` features to one vector.

Every network that reads per-stock histories encodes them here, so the Deep Risk Model's GRU
branches and the later sections' networks (Sharpe-ratio GRU / Transformer / TCN, the TFT option
of the diagnostics) share one interface: ``encoder(x)`` maps ``(S, L, P)`` to ``(S,
encoder.out_features)``, and :func:`make_encoder` builds one by name (``ENCODERS``).
"""

from __future__ import annotations

import torch
from torch import nn


class GRUEncoder(nn.Module):
    """A GRU with attention pooling over time, concatenated with the last hidden state.

    :math:`h_{1..L} = \\mathrm{GRU}(x)`; score :math:`v^\\top \\tanh(U h_\\tau + b)`, softmax over
    time, :math:`\\bar h = \\sum_\\tau \\alpha_\\tau h_\\tau`; output :math:`[\\bar h, h_L]`.

    Parameters
    ----------
    n_features : int
        P, input features per time step.
    hidden_size, num_layers : int
        GRU width H and depth.

    Attributes
    ----------
    out_features : int
        ``2 H``.
    """

    def __init__(self, *, n_features: int, hidden_size: int, num_layers: int) -> None:
        super().__init__()
        self.gru = nn.GRU(n_features, hidden_size, num_layers=num_layers, batch_first=True)
        self.score = nn.Sequential(nn.Linear(hidden_size, hidden_size), nn.Tanh(),
                                   nn.Linear(hidden_size, 1, bias=False))
        self.out_features = 2 * hidden_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Encode sequences ``(S, L, P)`` as ``(S, 2 H)``."""
        h, _ = self.gru(x)  # (S, L, H)
        alpha = torch.softmax(self.score(h), dim=1)  # (S, L, 1), over time
        pooled = (alpha * h).sum(dim=1)
        return torch.cat([pooled, h[:, -1]], dim=-1)


class LinearEncoder(nn.Module):
    """The identity on the flattened sequence: with a linear head, a *linear* map of all ``L P`` inputs.

    The linear-probe reference of a network: same inputs, same head, same loss and training
    loop, no non-linearity before the head. ``hidden_size`` and ``num_layers`` are ignored.

    Attributes
    ----------
    out_features : int
        ``L P``.
    """

    def __init__(self, *, n_features: int, seq_len: int, **_: int) -> None:
        super().__init__()
        self.seq_len, self.n_features = seq_len, n_features
        self.out_features = seq_len * n_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Flatten ``(S, L, P)`` to ``(S, L P)``; ``ValueError`` if ``L`` is not the configured length."""
        if x.shape[1:] != (self.seq_len, self.n_features):
            raise ValueError(f"linear encoder built for sequences of {self.seq_len} x {self.n_features}, "
                             f"got {tuple(x.shape[1:])}")
        return x.flatten(1)


#: Encoders by name (the ``encoder`` setting of a network's config section).
ENCODERS: dict[str, type[nn.Module]] = {"gru": GRUEncoder, "linear": LinearEncoder}


def make_encoder(kind: str, *, n_features: int, hidden_size: int, num_layers: int, seq_len: int = 20) -> nn.Module:
    """The encoder ``kind`` of :data:`ENCODERS`; ``ValueError`` naming the known ones otherwise.

    ``seq_len`` (``L``) is used only by encoders whose size depends on it (``linear``).
    """
    if kind not in ENCODERS:
        raise ValueError(f"unknown sequence encoder {kind!r}; known: {sorted(ENCODERS)}")
    if kind == "gru":
        return GRUEncoder(n_features=n_features, hidden_size=hidden_size, num_layers=num_layers)
    return ENCODERS[kind](n_features=n_features, hidden_size=hidden_size, num_layers=num_layers, seq_len=seq_len)

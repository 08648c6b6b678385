r"""A Transformer encoder (Vaswani et al. 2017) over a stock's sequence, as a sequence encoder.

Inputs ``(S, L, P)`` are mapped to width ``d`` by a linear layer, given sinusoidal position
encodings, passed through ``num_layers`` pre-norm ``nn.TransformerEncoderLayer`` blocks with a
causal mask, and the last step's vector is returned ``(S, d)`` (it has seen every step).

``patch > 1`` first groups every ``patch`` consecutive steps into one token of ``patch P`` inputs
(as PatchTST does), so attention runs over ``L / patch`` tokens: on CPU, attention over 63 daily
steps of 800 sequences costs ~7x more per step than over 21 three-day tokens.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def sinusoidal_positions(length: int, d: int) -> torch.Tensor:
    """``(L, d)``: :math:`PE_{\\tau, 2i} = \\sin(\\tau / 10000^{2i/d})`, :math:`PE_{\\tau, 2i+1} = \\cos(\\cdot)`."""
    pos = torch.arange(length, dtype=torch.float32)[:, None]
    freq = torch.exp(torch.arange(0, d, 2, dtype=torch.float32) * (-math.log(10000.0) / d))
    pe = torch.zeros(length, d)
    pe[:, 0::2] = torch.sin(pos * freq)
    pe[:, 1::2] = torch.cos(pos * freq)[:, : d // 2]
    return pe


class TransformerSeqEncoder(nn.Module):
    """Transformer ``(S, L, P) -> (S, d)`` (module docstring).

    Parameters
    ----------
    n_features : int
    hidden_size : int
        d (divisible by ``n_heads``).
    num_layers : int
    n_heads : int
    dropout : float
    max_len : int
        Longest sequence the position table covers.
    patch : int
        Steps per token (``L`` must be a multiple of it).

    Attributes
    ----------
    out_features : int
        d.
    """

    def __init__(self, *, n_features: int, hidden_size: int, num_layers: int, n_heads: int = 4, dropout: float = 0.0,
                 max_len: int = 512, patch: int = 1) -> None:
        super().__init__()
        if patch < 1:
            raise ValueError(f"patch must be >= 1, got {patch}")
        self.patch = patch
        self.proj = nn.Linear(n_features * patch, hidden_size)
        layer = nn.TransformerEncoderLayer(hidden_size, n_heads, dim_feedforward=2 * hidden_size, dropout=dropout,
                                           batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, num_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(hidden_size)
        self.register_buffer("positions", sinusoidal_positions(max_len, hidden_size), persistent=False)
        self.out_features = hidden_size

    def sequence(self, x: torch.Tensor) -> torch.Tensor:
        """Every token's vector ``(S, L / patch, d)``; token ``t`` depends on tokens ``<= t`` only (causal mask)."""
        S, L, P = x.shape
        if L % self.patch:
            raise ValueError(f"sequence length {L} is not a multiple of patch={self.patch}")
        x = x.reshape(S, L // self.patch, self.patch * P)
        L = x.shape[1]
        h = self.proj(x) + self.positions[:L]
        causal = torch.ones(L, L, dtype=torch.bool, device=x.device).triu(1)
        return self.norm(self.encoder(h, mask=causal))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.sequence(x)[:, -1]

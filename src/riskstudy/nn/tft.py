r"""Temporal Fusion Transformer blocks (Lim et al. 2021) as a sequence encoder, written in torch.

``pytorch-forecasting`` (whose TFT sub-modules the issue allows) is not on this project's package
index, so the blocks are written here, following the paper's equations:

* **Gated residual network** (:class:`GatedResidualNetwork`):
  :math:`\mathrm{GRN}(a) = \mathrm{LayerNorm}\big(s(a) + \mathrm{GLU}(W_1 \eta + b_1)\big)`,
  :math:`\eta = \mathrm{ELU}(W_2 a + b_2)`, :math:`\mathrm{GLU}(\gamma) = \sigma(W_4\gamma + b_4)
  \odot (W_5 \gamma + b_5)`, :math:`s` the identity or a linear skip when widths differ.
* **Variable selection network** (:class:`VariableSelection`): each of the ``P`` input variables
  of a time step is embedded (a linear map of its scalar to ``d``) and processed by its own GRN
  (one batched einsum over variables); a GRN of the flattened embeddings gives softmax weights
  :math:`v_{\tau} \in \Delta^{P}`; the step's representation is :math:`\sum_p v_{\tau p}
  \tilde\xi_{\tau p}`. The weights are the variable importances (returned).
* **Sequence layer**: an LSTM over the selected representations with a gated skip connection
  (GLU, add and LayerNorm), as the paper's locality-enhancement layer.
* **Interpretable multi-head attention** (:class:`InterpretableMultiHeadAttention`): heads have
  their own query/key maps but share one value map, and the heads' attention matrices are
  averaged, :math:`\tilde H = \frac1{m}\sum_h A_h V W_V`, so one matrix says where the encoder
  looks; causal (a step attends to itself and earlier steps).
* A gated skip and a position-wise GRN; the output is the last step's vector.

:class:`TFTEncoder` maps ``(S, L, P)`` to ``(S, d)`` like every encoder of
:mod:`riskstudy.nn.encoders`; ``last_weights`` keeps the variable-selection weights ``(S, L, P)``
and attention ``(S, L, L)`` of the latest forward pass for inspection.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F


class GatedLinearUnit(nn.Module):
    """:math:`\\sigma(W_4 x + b_4) \\odot (W_5 x + b_5)` ``(..., d_in) -> (..., d_out)``."""

    def __init__(self, d_in: int, d_out: int) -> None:
        super().__init__()
        self.lin = nn.Linear(d_in, 2 * d_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.glu(self.lin(x), dim=-1)


class GatedResidualNetwork(nn.Module):
    """GRN ``(..., d_in) -> (..., d_out)`` (module docstring)."""

    def __init__(self, d_in: int, d_hidden: int, d_out: int, *, dropout: float = 0.0) -> None:
        super().__init__()
        self.skip = nn.Identity() if d_in == d_out else nn.Linear(d_in, d_out)
        self.fc2 = nn.Linear(d_in, d_hidden)
        self.fc1 = nn.Linear(d_hidden, d_hidden)
        self.drop = nn.Dropout(dropout)
        self.gate = GatedLinearUnit(d_hidden, d_out)
        self.norm = nn.LayerNorm(d_out)

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        eta = self.fc1(F.elu(self.fc2(a)))
        return self.norm(self.skip(a) + self.gate(self.drop(eta)))


class VariableSelection(nn.Module):
    """Variable selection over ``P`` scalar inputs per step: ``(S, L, P) -> ((S, L, d), weights (S, L, P))``."""

    def __init__(self, n_features: int, d: int, *, dropout: float = 0.0) -> None:
        super().__init__()
        self.n_features, self.d = n_features, d
        self.embed_w = nn.Parameter(torch.empty(n_features, d))
        self.embed_b = nn.Parameter(torch.zeros(n_features, d))
        nn.init.normal_(self.embed_w, std=1.0)
        # one GRN per variable, batched: weights stacked over variables
        self.v_fc2 = nn.Parameter(torch.empty(n_features, d, d))
        self.v_b2 = nn.Parameter(torch.zeros(n_features, d))
        self.v_fc1 = nn.Parameter(torch.empty(n_features, d, d))
        self.v_b1 = nn.Parameter(torch.zeros(n_features, d))
        self.v_gate = nn.Parameter(torch.empty(n_features, d, 2 * d))
        self.v_bg = nn.Parameter(torch.zeros(n_features, 2 * d))
        for w in (self.v_fc2, self.v_fc1, self.v_gate):
            nn.init.kaiming_uniform_(w, a=math.sqrt(5))
        self.v_norm = nn.LayerNorm(d)
        self.drop = nn.Dropout(dropout)
        self.selector = GatedResidualNetwork(n_features * d, d, n_features, dropout=dropout)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        xi = x.unsqueeze(-1) * self.embed_w + self.embed_b  # (S, L, P, d)
        weights = torch.softmax(self.selector(xi.flatten(-2)), dim=-1)  # (S, L, P)
        eta = torch.einsum("slpd,pde->slpe", F.elu(torch.einsum("slpd,pde->slpe", xi, self.v_fc2) + self.v_b2),
                           self.v_fc1) + self.v_b1
        gated = F.glu(torch.einsum("slpd,pde->slpe", self.drop(eta), self.v_gate) + self.v_bg, dim=-1)
        processed = self.v_norm(xi + gated)  # (S, L, P, d)
        return (weights.unsqueeze(-1) * processed).sum(dim=-2), weights


class InterpretableMultiHeadAttention(nn.Module):
    """Causal self-attention with per-head queries/keys and one shared value map; heads averaged."""

    def __init__(self, d: int, n_heads: int, *, dropout: float = 0.0) -> None:
        super().__init__()
        if d % n_heads:
            raise ValueError(f"hidden size {d} must be divisible by the {n_heads} heads")
        self.n_heads, self.d_head = n_heads, d // n_heads
        self.q = nn.Linear(d, d)
        self.k = nn.Linear(d, d)
        self.v = nn.Linear(d, self.d_head)
        self.out = nn.Linear(self.d_head, d)
        self.drop = nn.Dropout(dropout)

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        S, L, _ = h.shape
        q = self.q(h).view(S, L, self.n_heads, self.d_head).transpose(1, 2)  # (S, m, L, dh)
        k = self.k(h).view(S, L, self.n_heads, self.d_head).transpose(1, 2)
        scores = q @ k.transpose(-1, -2) / math.sqrt(self.d_head)  # (S, m, L, L)
        causal = torch.ones(L, L, dtype=torch.bool, device=h.device).triu(1)
        attn = torch.softmax(scores.masked_fill(causal, float("-inf")), dim=-1).mean(dim=1)  # (S, L, L)
        return self.out(self.drop(attn) @ self.v(h)), attn


class TFTEncoder(nn.Module):
    """TFT encoder ``(S, L, P) -> (S, d)`` (module docstring).

    Parameters
    ----------
    n_features : int
        P.
    hidden_size : int
        d.
    num_layers : int
        Layers of the LSTM.
    n_heads : int
        Attention heads (``d`` divisible by it).
    dropout : float

    Attributes
    ----------
    out_features : int
        ``d``.
    last_weights : dict
        ``"variables"`` ``(S, L, P)`` and ``"attention"`` ``(S, L, L)`` of the latest forward pass (detached).
    """

    def __init__(self, *, n_features: int, hidden_size: int, num_layers: int = 1, n_heads: int = 4,
                 dropout: float = 0.0) -> None:
        super().__init__()
        d = hidden_size
        self.select = VariableSelection(n_features, d, dropout=dropout)
        self.lstm = nn.LSTM(d, d, num_layers=num_layers, batch_first=True)
        self.lstm_gate = GatedLinearUnit(d, d)
        self.lstm_norm = nn.LayerNorm(d)
        self.enrich = GatedResidualNetwork(d, d, d, dropout=dropout)
        self.attention = InterpretableMultiHeadAttention(d, n_heads, dropout=dropout)
        self.attn_gate = GatedLinearUnit(d, d)
        self.attn_norm = nn.LayerNorm(d)
        self.position_wise = GatedResidualNetwork(d, d, d, dropout=dropout)
        self.out_gate = GatedLinearUnit(d, d)
        self.out_norm = nn.LayerNorm(d)
        self.out_features = d
        self.last_weights: dict[str, torch.Tensor] = {}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        selected, v = self.select(x)  # (S, L, d)
        h, _ = self.lstm(selected)
        phi = self.lstm_norm(selected + self.lstm_gate(h))
        theta = self.enrich(phi)
        att, a = self.attention(theta)
        delta = self.attn_norm(theta + self.attn_gate(att))
        psi = self.out_norm(phi + self.out_gate(self.position_wise(delta)))
        self.last_weights = {"variables": v.detach(), "attention": a.detach()}
        return psi[:, -1]

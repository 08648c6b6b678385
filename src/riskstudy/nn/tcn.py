r"""Temporal convolutional network (Bai, Kolter, Koltun 2018) as a sequence encoder, written in torch.

``pytorch-tcn`` (named by the issue) is not on this project's package index. A TCN here is a stack
of residual blocks; block ``j`` has two causal 1-D convolutions of kernel size ``k`` and dilation
``2^j`` (left padding ``(k - 1) 2^j``, so output step :math:`\tau` sees inputs :math:`\le \tau`
only), weight normalisation, ReLU and dropout, and a 1x1 convolution on the skip path when widths
differ. The receptive field is :math:`1 + 2 (k - 1)(2^{J} - 1)` steps; the encoder returns the last
step's channels ``(S, H)``, like every encoder of :mod:`riskstudy.nn.encoders`.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.parametrizations import weight_norm


class CausalConv1d(nn.Module):
    """``(S, C_in, L) -> (S, C_out, L)``, left-padded so step ``t`` depends on steps ``<= t`` only."""

    def __init__(self, c_in: int, c_out: int, kernel_size: int, dilation: int) -> None:
        super().__init__()
        self.pad = (kernel_size - 1) * dilation
        self.conv = weight_norm(nn.Conv1d(c_in, c_out, kernel_size, dilation=dilation))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, (self.pad, 0)))


class TemporalBlock(nn.Module):
    """Two causal convolutions with ReLU and dropout, plus a residual connection."""

    def __init__(self, c_in: int, c_out: int, kernel_size: int, dilation: int, dropout: float) -> None:
        super().__init__()
        self.conv1 = CausalConv1d(c_in, c_out, kernel_size, dilation)
        self.conv2 = CausalConv1d(c_out, c_out, kernel_size, dilation)
        self.drop = nn.Dropout(dropout)
        self.skip = nn.Conv1d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.drop(F.relu(self.conv1(x)))
        h = self.drop(F.relu(self.conv2(h)))
        return F.relu(h + self.skip(x))


class TCNEncoder(nn.Module):
    """TCN ``(S, L, P) -> (S, H)`` (module docstring).

    Parameters
    ----------
    n_features : int
        P.
    hidden_size : int
        Channels H of every block.
    num_layers : int
        Blocks J (dilations 1, 2, ..., 2^(J-1)).
    kernel_size : int
    dropout : float

    Attributes
    ----------
    out_features : int
        H.
    receptive_field : int
    """

    def __init__(self, *, n_features: int, hidden_size: int, num_layers: int, kernel_size: int = 3,
                 dropout: float = 0.0) -> None:
        super().__init__()
        self.blocks = nn.Sequential(*[TemporalBlock(n_features if j == 0 else hidden_size, hidden_size, kernel_size, 2 ** j,
                                                    dropout) for j in range(num_layers)])
        self.out_features = hidden_size
        self.receptive_field = 1 + 2 * (kernel_size - 1) * (2 ** num_layers - 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(x.transpose(1, 2))[:, :, -1]

r"""Temporal convolutional network (Bai, Kolter, Koltun 2018) as a sequence encoder: ``pytorch-tcn``'s ``TCN``.

The stack is the library's (:class:`pytorch_tcn.TCN`): residual blocks, block ``j`` with two causal
1-D convolutions of kernel size ``k`` and dilation ``2^j`` (left padding, so output step
:math:`\tau` sees inputs :math:`\le \tau` only), weight normalisation, ReLU and dropout, and a 1x1
convolution on the skip path when widths differ. The receptive field is
:math:`1 + 2 (k - 1)(2^{J} - 1)` steps. This module only adapts it to the encoder interface of
:mod:`riskstudy.nn.encoders`: ``(S, L, P)`` in (the library's ``"NLC"`` layout), the last step's
channels ``(S, H)`` out.
"""

from __future__ import annotations

import torch
from pytorch_tcn import TCN
from torch import nn


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
    tcn : pytorch_tcn.TCN
    """

    def __init__(self, *, n_features: int, hidden_size: int, num_layers: int, kernel_size: int = 3,
                 dropout: float = 0.0) -> None:
        super().__init__()
        self.tcn = TCN(n_features, [hidden_size] * num_layers, kernel_size=kernel_size, dropout=dropout,
                       causal=True, use_norm="weight_norm", activation="relu", input_shape="NLC")
        self.out_features = hidden_size
        self.receptive_field = 1 + 2 * (kernel_size - 1) * (2 ** num_layers - 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.tcn(x)[:, -1, :]

r"""Direct networks: a stock's last 63 days -> a score -> portfolio weights, trained on negative Sharpe.

:class:`DirectNet` applies one sequence encoder to every stock of a decision day (GRU, Transformer
or TCN, :func:`build_encoder`: one interface ``(S, L, P) -> (S, D)``), dropout, a linear head
giving a score per stock, and the bounded softmax of :mod:`riskstudy.sharpe.weights` over the
stocks present that day. :class:`DirectTask` trains it through the study's one loop
(:func:`riskstudy.nn.loop.fit`): each optimizer step takes ``batch_decisions`` contiguous
decision days in time order and minimises :func:`riskstudy.sharpe.losses.negative_sharpe` of the
portfolios bought at each of them and held ``hold`` days; SAM (``pytorch-optimizer``'s :class:`pytorch_optimizer.SAM`
around SGD with momentum) or Adam. Validation: the annualised Sharpe ratio of non-overlapping
``hold``-day holdings decided on the validation days (what the backtest does, without the cap and
costs), which early stopping maximises.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from pytorch_optimizer import SAM
from torch import nn

from riskstudy.nn.encoders import GRUEncoder, LinearEncoder
from riskstudy.nn.tcn import TCNEncoder
from riskstudy.nn.transformer import TransformerSeqEncoder
from riskstudy.sharpe.config import SharpeConfig
from riskstudy.sharpe.data import FEATURES, SharpeInputs
from riskstudy.sharpe.losses import holding_returns, negative_sharpe
from riskstudy.sharpe.weights import bounded_softmax


def build_encoder(kind: str, *, n_features: int, hidden_size: int, num_layers: int, seq_len: int, dropout: float = 0.0,
                  n_heads: int = 4, kernel_size: int = 3, patch: int = 1) -> nn.Module:
    """The sequence encoder ``kind`` (``"gru"``, ``"transformer"``, ``"tcn"``, ``"linear"``): ``(S, L, P)`` to ``(S, D)``.

    ``"linear"`` (:class:`~riskstudy.nn.encoders.LinearEncoder`) flattens the window, so the
    network is a linear score of its ``L P`` inputs: the reference the others must beat.
    """
    if kind == "linear":
        return LinearEncoder(n_features=n_features, seq_len=seq_len)
    if kind == "gru":
        return GRUEncoder(n_features=n_features, hidden_size=hidden_size, num_layers=num_layers)
    if kind == "transformer":
        return TransformerSeqEncoder(n_features=n_features, hidden_size=hidden_size, num_layers=num_layers,
                                     n_heads=n_heads, dropout=dropout, patch=patch)
    if kind == "tcn":
        return TCNEncoder(n_features=n_features, hidden_size=hidden_size, num_layers=num_layers,
                          kernel_size=kernel_size, dropout=dropout)
    raise ValueError(f"unknown network {kind!r}; known: gru, transformer, tcn, linear")


class DirectNet(nn.Module):
    """Weights ``(B, N)`` from windows ``(B, N, L, P)`` and a mask ``(B, N)`` (module docstring).

    Parameters
    ----------
    encoder : nn.Module
        ``(S, L, P) -> (S, encoder.out_features)``.
    dropout : float
        On the encoding, before the head.
    lower, upper : float
        Weight bounds (:func:`~riskstudy.sharpe.weights.bounded_softmax`); masked stocks get 0, which
        needs ``lower == 0`` on a day with a stock missing.
    """

    def __init__(self, encoder: nn.Module, *, dropout: float = 0.0, lower: float = 0.0, upper: float = 1.0) -> None:
        super().__init__()
        self.encoder = encoder
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(encoder.out_features, 1)
        self.lower, self.upper = lower, upper

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        B, N, L, P = x.shape
        z = self.head(self.drop(self.encoder(x.reshape(B * N, L, P)))).reshape(B, N)
        if self.lower != 0 and not bool(mask.all()):
            raise ValueError("a lower weight bound other than 0 needs every stock present on every decision day")
        z = z.masked_fill(~mask, float("-inf"))
        return bounded_softmax(z, lower=self.lower, upper=self.upper)


def batches(days: np.ndarray, size: int) -> list[np.ndarray]:
    """``days`` cut into contiguous chunks of ``size`` in time order (the last one shorter; chunks of one dropped)."""
    out = [days[i:i + size] for i in range(0, len(days), size)]
    return [b for b in out if len(b) > 1]


class DirectTask:
    """A direct network as a :class:`riskstudy.nn.loop.Task` (module docstring).

    Parameters
    ----------
    inputs : SharpeInputs
        Normalised (``mean_``/``std_`` fitted on training rows).
    train_days, valid_days : ndarray of int
        Decision rows (labels inside their windows, :func:`riskstudy.sharpe.data.split_rows`).
    network : str
    cfg : SharpeConfig
    optimizer : {"sam", "adam"}, optional
        Default ``cfg.nets.optimizer``.
    device : torch.device
    """

    metrics = ("loss", "sharpe")
    score = "sharpe"
    modules = ("riskstudy.sharpe.direct", "riskstudy.sharpe.losses", "riskstudy.sharpe.weights", "riskstudy.sharpe.data",
               "riskstudy.nn.encoders", "riskstudy.nn.transformer", "riskstudy.nn.tcn")

    def __init__(self, inputs: SharpeInputs, *, train_days: np.ndarray, valid_days: np.ndarray, network: str,
                 cfg: SharpeConfig, optimizer: str | None = None, device: torch.device | None = None) -> None:
        n = cfg.nets
        self.inputs, self.cfg, self.network = inputs, cfg, network
        self.optimizer = optimizer or n.optimizer
        self.device = device or torch.device("cpu")
        self.name = f"{network}-{self.optimizer}"
        self.train_days = np.asarray(train_days, dtype=int)[::n.decision_stride]
        self.valid_days = np.asarray(valid_days, dtype=int)[::cfg.hold]
        self.config = {"network": network, "optimizer": self.optimizer, "nets": n.model_dump(mode="json"),
                       "hold": cfg.hold, "risk_free": cfg.risk_free, "lower": cfg.lower, "upper": cfg.upper,
                       "seq_len": cfg.seq_len, "device": str(self.device)}
        self._train = self._tensors(self.train_days)
        self._valid = self._tensors(self.valid_days)

    def _tensors(self, days: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x, mask = self.inputs.windows(days)
        fut = self.inputs.future(days, self.cfg.hold)
        return (torch.from_numpy(x).to(self.device), torch.from_numpy(mask).to(self.device),
                torch.from_numpy(fut.astype(np.float32)).to(self.device))

    def build_model(self) -> nn.Module:
        n = self.cfg.nets
        enc = build_encoder(self.network, n_features=len(FEATURES), hidden_size=n.hidden_size, num_layers=n.num_layers,
                            seq_len=self.cfg.seq_len, dropout=n.dropout, n_heads=n.n_heads, kernel_size=n.kernel_size,
                            patch=n.patch)
        return DirectNet(enc, dropout=n.dropout, lower=self.cfg.lower, upper=self.cfg.upper).to(self.device)

    def build_optimizer(self, model: nn.Module) -> torch.optim.Optimizer:
        n = self.cfg.nets
        if self.optimizer == "sam":
            return SAM(model.parameters(), torch.optim.SGD, rho=n.rho, lr=n.lr, momentum=n.momentum)
        return torch.optim.Adam(model.parameters(), lr=n.adam_lr)

    def _chunks(self) -> list[slice]:
        idx = np.arange(len(self.train_days))
        return [slice(int(b[0]), int(b[-1]) + 1) for b in batches(idx, self.cfg.nets.batch_decisions)]

    def n_steps(self, epoch: int) -> int:
        return len(self._chunks())

    def _loss(self, model: nn.Module, s: slice) -> torch.Tensor:
        x, mask, fut = self._train
        return negative_sharpe(model(x[s], mask[s]), fut[s], risk_free=self.cfg.risk_free)

    def train_epoch(self, model: nn.Module, optimizer: torch.optim.Optimizer, epoch: int, *,
                    progress: Callable[[], object]) -> tuple[dict[str, float], Any]:
        losses = []
        for s in self._chunks():
            optimizer.zero_grad()
            loss = self._loss(model, s)
            loss.backward()
            if isinstance(optimizer, SAM):
                def closure(s: slice = s) -> torch.Tensor:
                    optimizer.zero_grad()
                    l2 = self._loss(model, s)
                    l2.backward()
                    return l2

                optimizer.step(closure)
            else:
                optimizer.step()
            losses.append(float(loss.detach()))
            progress()
        m = float(np.mean(losses))
        return {"loss": m, "sharpe": -m}, None

    @torch.no_grad()
    def validate(self, model: nn.Module, state: Any) -> dict[str, float]:
        model.eval()
        x, mask, fut = self._valid
        r = holding_returns(model(x, mask), fut).reshape(-1).double().cpu().numpy()
        model.train()
        ex = r - self.cfg.risk_free / 252
        sr = float(np.sqrt(252) * ex.mean() / ex.std(ddof=1))
        return {"loss": -sr, "sharpe": sr}

    def data_parts(self) -> tuple[list[bytes], str]:
        return [self.train_days.tobytes(), self.valid_days.tobytes()], self.inputs.fingerprint()


@torch.no_grad()
def predict_weights(model: nn.Module, inputs: SharpeInputs, days: np.ndarray, *, chunk: int = 64,
                    device: torch.device | None = None) -> np.ndarray:
    """Weights ``(D, N)`` the trained ``model`` decides at the close of each row of ``days`` (eval mode)."""
    model.eval()
    device = device or next(model.parameters()).device
    out = []
    for i in range(0, len(days), chunk):
        x, mask = inputs.windows(days[i:i + chunk])
        out.append(model(torch.from_numpy(x).to(device), torch.from_numpy(mask).to(device)).double().cpu().numpy())
    return np.concatenate(out)

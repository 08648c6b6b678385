r"""The conditional autoencoders CA0-CA3 (Gu, Kelly, Xiu 2021), trained through :func:`riskstudy.nn.loop.fit`.

Model
-----
Beta network: the characteristics :math:`z_{i,t-1}` ``(P,)`` of a stock map to its ``K`` betas,

.. math:: \beta_{i,t-1} = W_{\text{out}}\, h^{(J)}, \quad
          h^{(j)} = \mathrm{BN}\big(\mathrm{ReLU}(W_j h^{(j-1)} + b_j)\big), \quad h^{(0)} = z_{i,t-1},

with ``J`` hidden layers: CA0 none (linear betas), CA1 (32), CA2 (32, 16), CA3 (32, 16, 8)
(``cae.hidden``). Factor network: a linear map (no bias) of the ``L = P + 1``
characteristic-managed portfolios (:func:`~riskstudy.cae.characteristics.managed_portfolios`),

.. math:: f_t = W_f\, x_t, \qquad x_t = (\tilde Z_{t-1}'\tilde Z_{t-1})^{-1} \tilde Z_{t-1}' r_t,
          \quad \tilde Z = [Z, 1].

Loss of a batch of periods, over its members' stock-periods ``M``:

.. math:: \mathcal L = \frac{1}{|M|} \sum_{(i,t) \in M} (r_{i,t} - \beta_{i,t-1}' f_t)^2
          + \lambda_1 \sum_{\text{weights}} |w|

(``cae.l1``; biases and batch-norm parameters are not penalised). Adam (``cae.lr``); each step
is ``cae.batch_periods`` periods drawn without replacement (one permutation per epoch, seeded by
``(seed, epoch)``, so a resumed epoch repeats exactly). Early stopping on the validation total R^2
(:mod:`riskstudy.cae.scores`) with ``cae.patience``, through the study's one training loop
(seeding, determinism, checkpoints, run identity, dvclive).

An ensemble (:class:`ConditionalAutoencoder`) trains ``cae.n_seeds`` seeds and averages their
predicted returns (betas and factors of different seeds are not comparable: each seed has its own
rotation of the factor space).

Indexing: ``Z[t]`` (the end of period ``t``) prices ``R[t]`` (the next period's return), so
:math:`\beta_{t-1}` is ``beta(Z[t])`` and :math:`f_t` uses ``R[t]``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from riskstudy.cae.characteristics import Characteristics, managed_portfolios
from riskstudy.cae.scores import running_mean
from riskstudy.cae.config import CAEConfig
from riskstudy.nn import loop
from riskstudy.nn.loop import FitResult, Live

#: Modules whose source computes a CAE training result (the code part of its run identity).
TRAINING_MODULES: tuple[str, ...] = ("riskstudy.cae.models", "riskstudy.cae.characteristics", "riskstudy.nn.loop")
METRICS: tuple[str, ...] = ("loss", "r2")


class BetaNet(nn.Module):
    """Characteristics ``(M, P)`` -> betas ``(M, K)``: ``[Linear, ReLU, BatchNorm1d]`` per hidden layer, then ``Linear``."""

    def __init__(self, *, n_chars: int, n_factors: int, hidden: Sequence[int]) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = n_chars
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU(), nn.BatchNorm1d(h)]
            width = h
        layers.append(nn.Linear(width, n_factors))
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class CAENet(nn.Module):
    """Beta network and linear factor network.

    Parameters
    ----------
    n_chars : int
        P.
    n_portfolios : int
        L (managed portfolios, ``P + 1`` with the constant).
    n_factors : int
        K.
    hidden : sequence of int
        Hidden layer widths of the beta network (empty: CA0).
    """

    def __init__(self, *, n_chars: int, n_portfolios: int, n_factors: int, hidden: Sequence[int]) -> None:
        super().__init__()
        self.beta = BetaNet(n_chars=n_chars, n_factors=n_factors, hidden=hidden)
        self.factor = nn.Linear(n_portfolios, n_factors, bias=False)

    def forward(self, z: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Betas ``(M, K)`` of the stock-periods ``z`` ``(M, P)`` and factors ``(B, K)`` of the periods ``x`` ``(B, L)``."""
        return self.beta(z), self.factor(x)

    def l1(self) -> torch.Tensor:
        """Sum of absolute weights of every linear layer (biases and batch norm excluded)."""
        return sum(m.weight.abs().sum() for m in self.modules() if isinstance(m, nn.Linear))


@dataclass
class CAEData:
    """Tensors of every period of a :class:`~riskstudy.cae.characteristics.Characteristics` on one device.

    Attributes
    ----------
    Z : Tensor, float32, shape (T, N, P)
    R : Tensor, float32, shape (T, N)
        0 where the label is missing (never used: :attr:`mask`).
    mask : Tensor of bool, shape (T, N)
    X : Tensor, float32, shape (T, L)
        Managed portfolios of every period.
    fingerprint : str
        Hash of the inputs (part of the run identity).
    """

    Z: torch.Tensor
    R: torch.Tensor
    mask: torch.Tensor
    X: torch.Tensor
    fingerprint: str

    @classmethod
    def from_characteristics(cls, ch: Characteristics, *, device: torch.device) -> "CAEData":
        R = np.where(ch.mask, ch.R, 0.0)
        X = managed_portfolios(ch.Z, R, ch.mask)
        arrays = [np.ascontiguousarray(a, dtype=np.float32) for a in (ch.Z, R, X)]
        fp = loop.digest(*(a.tobytes() for a in arrays), ch.mask.tobytes())
        z, r, x = (torch.from_numpy(a).to(device) for a in arrays)
        return cls(Z=z, R=r, mask=torch.from_numpy(ch.mask.copy()).to(device), X=x, fingerprint=fp)

    def rows(self, periods: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Members of ``periods`` ``(B,)``: characteristics ``(M, P)``, returns ``(M,)``, position in ``periods`` ``(M,)``."""
        m = self.mask[periods]
        pos, col = torch.nonzero(m, as_tuple=True)
        t = periods[pos]
        return self.Z[t, col], self.R[t, col], pos


class CAETask:
    """One conditional autoencoder (one K, one seed) as a :class:`~riskstudy.nn.loop.Task`.

    Parameters
    ----------
    data : CAEData
    train, valid : ndarray of int, shape (T_train,), (T_valid,)
        Period indices (into ``data``) of the training and validation windows.
    hidden : sequence of int
        Beta-network hidden layers.
    n_factors : int
        K.
    config : CAEConfig
        ``lr``, ``l1``, ``batch_periods``, ``max_epochs``, ``patience``, ``device``.
    seed : int
        The run's seed (initialisation and batch order).
    """

    name = "CAE"
    metrics = METRICS
    score = "r2"
    modules = TRAINING_MODULES

    def __init__(self, data: CAEData, *, train: np.ndarray, valid: np.ndarray, hidden: Sequence[int], n_factors: int,
                 config: CAEConfig, seed: int) -> None:
        self.data, self.params, self.seed = data, config, seed
        self.train = np.asarray(train, dtype=np.int64)
        self.valid = np.asarray(valid, dtype=np.int64)
        self.hidden, self.n_factors = list(hidden), n_factors
        self.device = data.Z.device
        self.config = {"hidden": self.hidden, "n_factors": n_factors, "seed": seed, "lr": config.lr, "l1": config.l1,
                       "batch_periods": config.batch_periods, "max_epochs": config.max_epochs,
                       "patience": config.patience, "device": config.device}

    def build_model(self) -> CAENet:
        return CAENet(n_chars=self.data.Z.shape[-1], n_portfolios=self.data.X.shape[-1], n_factors=self.n_factors,
                      hidden=self.hidden).to(self.device)

    def build_optimizer(self, model: nn.Module) -> torch.optim.Optimizer:
        return torch.optim.Adam(model.parameters(), lr=self.params.lr)

    def n_steps(self, epoch: int) -> int:
        return math.ceil(len(self.train) / self.params.batch_periods)

    def _losses(self, model: CAENet, periods: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Penalised loss, SSE and uncentred sum of squares of ``periods``' members."""
        z, r, pos = self.data.rows(periods)
        beta, f = model(z, self.data.X[periods])
        err = r - (beta * f[pos]).sum(-1)
        sse = err.square().sum()
        return sse / max(len(r), 1) + self.params.l1 * model.l1(), sse, r.square().sum()

    def train_epoch(self, model: CAENet, optimizer: torch.optim.Optimizer, epoch: int, *,
                    progress: Callable[[], object]) -> tuple[dict[str, float], None]:
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        order = torch.as_tensor(self.train)[torch.randperm(len(self.train), generator=gen)].to(self.device)
        losses, sse, ss = [], 0.0, 0.0
        for chunk in order.split(self.params.batch_periods):
            optimizer.zero_grad()
            loss, e, s = self._losses(model, chunk)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
            sse, ss = sse + e.item(), ss + s.item()
            progress()
        return {"loss": float(np.mean(losses)), "r2": 1.0 - sse / ss if ss > 0 else math.nan}, None

    @torch.no_grad()
    def validate(self, model: CAENet, state: None) -> dict[str, float]:
        model.eval()
        loss, sse, ss = self._losses(model, torch.as_tensor(self.valid, device=self.device))
        return {"loss": float(loss), "r2": 1.0 - float(sse) / float(ss) if float(ss) > 0 else math.nan}

    def data_parts(self) -> tuple[list[bytes], str]:
        return [self.train.tobytes(), self.valid.tobytes()], self.data.fingerprint


class ConditionalAutoencoder:
    """An ensemble of conditional autoencoders of one architecture and one K (``cae.n_seeds`` seeds).

    Parameters
    ----------
    hidden : sequence of int
        Beta-network hidden layers (``cae.hidden[model]``).
    n_factors : int
        K.
    config : CAEConfig
        The ``cae`` section, passed whole.

    Attributes
    ----------
    models_ : list of CAENet
        One per seed, best-validation weights, eval mode, on the training device.
    results_ : list of FitResult
        Their training histories and best epochs.
    seeds_ : list of int
    train_ : ndarray of int
        Training periods (the running factor mean of :meth:`predict` starts from their factors).
    """

    def __init__(self, *, hidden: Sequence[int], n_factors: int, config: CAEConfig) -> None:
        self.hidden, self.n_factors, self.config = list(hidden), n_factors, config

    def fit(self, ch: Characteristics, *, train: np.ndarray, valid: np.ndarray,
            checkpoint_dir: str | os.PathLike | None = None, live: Live | None = None) -> "ConditionalAutoencoder":
        """Train every seed on the periods ``train``, early stopping on ``valid`` (indices into ``ch``)."""
        cfg = self.config
        self.data_ = CAEData.from_characteristics(ch, device=cfg.resolved_device())
        self.seeds_ = [cfg.seed + s for s in range(cfg.n_seeds)]
        self.train_ = np.asarray(train, dtype=np.int64)
        self.results_: list[FitResult] = []
        for seed in self.seeds_:
            task = CAETask(self.data_, train=self.train_, valid=valid, hidden=self.hidden, n_factors=self.n_factors,
                           config=cfg, seed=seed)
            path = None if checkpoint_dir is None else Path(checkpoint_dir) / f"k{self.n_factors}_s{seed}.pt"
            self.results_.append(loop.fit(task, max_epochs=cfg.max_epochs, patience=cfg.patience, seed=seed,
                                          checkpoint_path=path, live=live))
        self.models_ = [r.model for r in self.results_]
        return self

    @torch.no_grad()
    def _apply(self, ch: Characteristics, periods: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        p = np.asarray(periods, dtype=np.int64)
        dev = self.data_.Z.device
        z = torch.as_tensor(ch.Z[p], dtype=torch.float32, device=dev)
        x = torch.as_tensor(managed_portfolios(ch.Z[p], np.where(ch.mask[p], ch.R[p], 0.0), ch.mask[p]),
                            dtype=torch.float32, device=dev)
        T, N, P = z.shape
        betas, factors = [], []
        for model in self.models_:
            b, f = model(z.reshape(T * N, P), x)
            betas.append(b.reshape(T, N, -1).double().cpu().numpy())
            factors.append(f.double().cpu().numpy())
        return np.stack(betas), np.stack(factors)

    def betas(self, ch: Characteristics, periods: np.ndarray) -> np.ndarray:
        """Betas ``(S, T, N, K)`` of every seed at the period ends ``periods`` (known at each end)."""
        return self._apply(ch, periods)[0]

    def factors(self, ch: Characteristics, periods: np.ndarray) -> np.ndarray:
        """Factors ``(S, T, K)`` of every seed: the factor network on the managed portfolios of ``periods``."""
        return self._apply(ch, periods)[1]

    def predict(self, ch: Characteristics, periods: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        r"""Ensemble predictions of the returns ``R[periods]``.

        Returns
        -------
        total : ndarray, shape (T, N)
            Seed mean of :math:`\beta_{t-1}' f_t`.
        predictive : ndarray, shape (T, N)
            Seed mean of :math:`\beta_{t-1}' \lambda_{t-1}`, :math:`\lambda_{t-1}` the running mean of
            the seed's factors over the training periods and the periods of ``periods`` before ``t``
            (``periods`` should follow the training window without a gap).
        """
        beta, f = self._apply(ch, periods)
        prior = self.factors(ch, self.train_)
        lam = np.stack([running_mean(f[s], prior=prior[s]) for s in range(len(self.models_))])
        total = np.einsum("stnk,stk->tn", beta, f) / len(self.models_)
        predictive = np.einsum("stnk,stk->tn", beta, lam) / len(self.models_)
        return total, predictive

r"""Training and using the covariance-prediction network (Tian, Appendix A) on the Sharpe section's inputs.

* :func:`panel_of` turns :class:`~riskstudy.sharpe.data.SharpeInputs` back into a
  :class:`~riskstudy.data.panel.Panel` (a stock is a member on a day with a close), so the prior
  exposures are the study's own FRM style factors (:func:`riskstudy.features.style.style_factors`),
  standardised over the section's stocks; the regression weights are the size proxy (trailing
  mean dollar volume).
* :class:`CovNetTask` trains :class:`~riskstudy.sharpe.covnet.CovNet` through the one loop
  (:func:`riskstudy.nn.loop.fit`): each optimizer step takes ``batch_days`` temporally contiguous
  days (every ``day_stride``-th training day, in time order) and minimises the ZCA-whitening loss
  of the day's pure factor returns plus the Q-statistic loss of the specific variances
  (:mod:`riskstudy.sharpe.covnet_losses`); validation: the same loss on the validation days, whose
  negative early stopping maximises.
* Units: the network sees next-day returns divided by ``return_scale``, their standard deviation
  over the training rows (a constant, so the loss is unchanged in form), which puts the factor and
  specific variances it must produce at order 1 (a GRU's features are bounded; raw daily returns
  would need variances of order 1e-4, out of reach of a few hundred steps from initialisation);
  :func:`risk_models` multiplies ``F`` and ``Delta`` back by ``return_scale**2``.
* :func:`risk_models` gives, for each decision row ``t``, the day's
  :class:`~riskstudy.risk.covariance.FactorRiskModel` :math:`V_t = X_t F_t X_t' + \mathrm{diag}(\Delta_t)`
  from data up to ``t`` only (the next day's returns enter only the training loss).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from riskstudy.data.panel import Panel
from riskstudy.features.style import STYLE_FACTORS, style_factors
from riskstudy.nn.encoders import GRUEncoder
from riskstudy.nn.loop import digest
from riskstudy.risk.covariance import FactorRiskModel
from riskstudy.sharpe.covnet import CovNet
from riskstudy.sharpe.covnet_losses import factor_covariance_loss, specific_variance_loss
from riskstudy.sharpe.data import FEATURES, SharpeInputs
from riskstudy.sharpe.direct import batches


def panel_of(inputs: SharpeInputs) -> Panel:
    """The inputs as a :class:`Panel` (prices from the log levels; member = the day has a close)."""
    lv = np.exp(inputs.levels)
    o, h, lo, c, raw, v = (lv[..., j] for j in range(len(FEATURES)))
    fields = {"open": o, "high": h, "low": lo, "close": c, "volume": v, "ret": inputs.returns, "dollar_volume": raw * v}
    return Panel(market=inputs.market, dates=inputs.dates, instruments=inputs.instruments, fields=fields,
                 member=np.isfinite(c) & np.isfinite(v))


def prior_exposures(inputs: SharpeInputs, *, beta_window: int = 252, momentum_window: int = 252, momentum_skip: int = 21,
                    resvol_window: int = 252, liquidity_window: int = 21) -> tuple[np.ndarray, np.ndarray]:
    """FRM style exposures ``(T, N, 6)`` against the index proxy and size weights ``(T, N)`` (trailing mean dollar volume)."""
    panel = panel_of(inputs)
    prior = style_factors(panel, pd.Series(inputs.benchmark, index=inputs.dates), beta_window=beta_window,
                          momentum_window=momentum_window, momentum_skip=momentum_skip, resvol_window=resvol_window,
                          liquidity_window=liquidity_window)
    dv = pd.DataFrame(panel["dollar_volume"]).rolling(liquidity_window, min_periods=1).mean().to_numpy()
    return prior, dv


class CovNetTask:
    """The covariance network as a :class:`riskstudy.nn.loop.Task` (module docstring).

    Parameters
    ----------
    inputs : SharpeInputs
        Normalised inputs.
    prior : ndarray (T, N, 6)
    size : ndarray (T, N)
        Regression weights.
    train_days, valid_days : ndarray of int
        Rows ``t`` whose next-day returns ``t + 1`` lie in the window; rows with fewer than
        ``n_factors + 2`` stocks with every input are left out (:meth:`usable`).
    n_factors, hidden_size, num_layers : int
    lr : float
        Adam.
    batch_days, day_stride : int
    """

    metrics = ("loss", "factor", "specific", "score")
    score = "score"
    modules = ("riskstudy.sharpe.covnet_task", "riskstudy.sharpe.covnet", "riskstudy.sharpe.covnet_losses",
               "riskstudy.sharpe.data", "riskstudy.nn.encoders", "riskstudy.features.style")

    def __init__(self, inputs: SharpeInputs, prior: np.ndarray, size: np.ndarray, *, train_days: np.ndarray,
                 valid_days: np.ndarray, n_factors: int = 6, hidden_size: int = 32, num_layers: int = 1, lr: float = 1e-3,
                 batch_days: int = 32, day_stride: int = 1, device: torch.device | None = None) -> None:
        self.inputs, self.prior, self.size = inputs, prior, size
        self.device = device or torch.device("cpu")
        self.name = "CovNet"
        self.n_factors, self.hidden_size, self.num_layers, self.lr = n_factors, hidden_size, num_layers, lr
        self.batch_days = batch_days
        train_all = np.asarray(train_days, dtype=int)
        self.return_scale = float(np.nanstd(inputs.returns[train_all + 1]))
        if not (np.isfinite(self.return_scale) and self.return_scale > 0):
            raise ValueError(f"training returns have no spread (std {self.return_scale})")
        self.train_days = self.usable(train_all[::day_stride], n_factors + 2)
        self.valid_days = self.usable(np.asarray(valid_days, dtype=int), n_factors + 2)
        self.config = {"n_factors": n_factors, "hidden_size": hidden_size, "num_layers": num_layers, "lr": lr,
                       "batch_days": batch_days, "day_stride": day_stride, "device": str(self.device)}
        self._train = self.tensors(self.train_days, with_returns=True)
        self._valid = self.tensors(self.valid_days, with_returns=True)

    def _mask(self, days: np.ndarray, *, with_returns: bool) -> tuple[np.ndarray, np.ndarray]:
        """Windows ``(B, N, L, P)`` and the stocks with every input (the whole window, prior, size > 0, and the
        next-day return with ``with_returns``) ``(B, N)`` of rows ``days``."""
        x, mask = self.inputs.windows(days)
        w = self.size[days]
        mask = mask & np.isfinite(self.prior[days]).all(-1) & np.isfinite(w) & (w > 0)
        if with_returns:
            mask &= np.isfinite(self.inputs.returns[days + 1])
        return x, mask

    def usable(self, days: np.ndarray, least: int) -> np.ndarray:
        """The rows of ``days`` on which at least ``least`` stocks have every input and a next-day return (fewer
        make the size-weighted regression of ``n_factors`` factors singular)."""
        keep = days[self._mask(days, with_returns=True)[1].sum(1) >= least]
        if len(keep) == 0:
            raise ValueError(f"no day with {least} stocks with every input among {len(days)} rows")
        return keep

    def tensors(self, days: np.ndarray, *, with_returns: bool) -> dict[str, torch.Tensor]:
        """``prior, seq, weights, mask`` (and ``next_returns``) of rows ``days``; a stock needs every input (and its
        return). The regression weights are normalised to sum to 1 each day (the factor portfolios do not depend
        on their scale; raw dollar volumes reach 1e10)."""
        x, mask = self._mask(days, with_returns=with_returns)
        w = np.where(mask, np.nan_to_num(self.size[days]), 0.0)
        out = {"prior": np.nan_to_num(self.prior[days]), "seq": x, "weights": w / np.maximum(w.sum(1, keepdims=True), 1e-300),
               "mask": mask}
        if with_returns:
            out["next_returns"] = np.nan_to_num(self.inputs.returns[days + 1]) / self.return_scale
        dt = torch.float32
        return {k: torch.from_numpy(np.ascontiguousarray(v)).to(self.device, dtype=torch.bool if k == "mask" else dt)
                for k, v in out.items()}

    def build_model(self) -> nn.Module:
        enc = GRUEncoder(n_features=len(FEATURES), hidden_size=self.hidden_size, num_layers=self.num_layers)
        return CovNet(n_prior=len(STYLE_FACTORS), n_factors=self.n_factors, encoder=enc, hidden=self.hidden_size).to(self.device)

    def build_optimizer(self, model: nn.Module) -> torch.optim.Optimizer:
        return torch.optim.Adam(model.parameters(), lr=self.lr)

    def _chunks(self, n: int) -> list[slice]:
        return [slice(int(b[0]), int(b[-1]) + 1) for b in batches(np.arange(n), self.batch_days)]

    def n_steps(self, epoch: int) -> int:
        return len(self._chunks(len(self.train_days)))

    @staticmethod
    def losses(model: nn.Module, t: dict[str, torch.Tensor], s: slice) -> tuple[torch.Tensor, torch.Tensor]:
        """``(factor loss, specific loss)`` of the days ``s`` of tensors ``t``."""
        out = model(t["prior"][s], t["seq"][s], t["weights"][s], t["mask"][s], t["next_returns"][s])
        lf, _ = factor_covariance_loss(out.factor_cov.double(), out.factor_returns.double())
        ls = specific_variance_loss(out.specific_var.double(), out.residuals.double(), t["mask"][s])
        return lf, ls

    def train_epoch(self, model: nn.Module, optimizer: torch.optim.Optimizer, epoch: int, *,
                    progress: Callable[[], object]) -> tuple[dict[str, float], Any]:
        rows = []
        for s in self._chunks(len(self.train_days)):
            optimizer.zero_grad()
            lf, ls = self.losses(model, self._train, s)
            (lf + ls).backward()
            optimizer.step()
            rows.append((float(lf.detach()), float(ls.detach())))
            progress()
        return self._summary(rows), None

    @torch.no_grad()
    def validate(self, model: nn.Module, state: Any) -> dict[str, float]:
        model.eval()
        rows = [tuple(float(v) for v in self.losses(model, self._valid, s)) for s in self._chunks(len(self.valid_days))]
        model.train()
        return self._summary(rows)

    @staticmethod
    def _summary(rows: list[tuple[float, float]]) -> dict[str, float]:
        """Mean factor and specific losses of the steps, as plain floats (they go into checkpoints)."""
        f, sp = (float(v) for v in np.mean(rows, axis=0))
        return {"loss": f + sp, "factor": f, "specific": sp, "score": -(f + sp)}

    def data_parts(self) -> tuple[list[bytes], str]:
        h = digest(np.ascontiguousarray(self.prior).tobytes(), np.ascontiguousarray(self.size).tobytes())
        return [self.train_days.tobytes(), self.valid_days.tobytes()], f"{self.inputs.fingerprint()}-{h}"


@torch.no_grad()
def risk_models(model: nn.Module, task: CovNetTask, days: np.ndarray, *, chunk: int = 64) -> dict[int, FactorRiskModel]:
    """Each row's :class:`FactorRiskModel` over the stocks with every input that day (``assets``: their columns), in
    the units of ``task.inputs.returns``."""
    model.eval()
    out: dict[int, FactorRiskModel] = {}
    for i in range(0, len(days), chunk):
        d = days[i:i + chunk]
        t = task.tensors(d, with_returns=False)
        res = model(t["prior"], t["seq"], t["weights"], t["mask"])
        X, F, D = (v.double().cpu().numpy() for v in (res.exposures, res.factor_cov, res.specific_var))
        F, D = F * task.return_scale**2, D * task.return_scale**2  # back to the units of the returns
        m = t["mask"].cpu().numpy()
        for j, row in enumerate(d):
            a = np.flatnonzero(m[j])
            out[int(row)] = FactorRiskModel(exposures=X[j, a], factor_cov=F[j], specific_var=D[j, a], assets=a)
    return out

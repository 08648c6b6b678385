"""Batched Deep Risk Model trainer, per-day reference step, checkpoints and prediction.

One optimizer step per batch of ``batch_days`` consecutive days (the paper's gradient
accumulation over 64 days). Because the exposure smoothing carries a *detached* previous
value, each day's loss depends only on that day's forward pass, so the batched step
(mean of the per-day losses over valid days, one backward) has exactly the gradient of the
per-day loop that back-propagates ``loss_t / n_valid_days`` day by day
(:func:`train_step_per_day`, kept as the reference and tested for equality).

Smoothing state
---------------
:class:`ExposureCarry` keeps the last smoothed exposures of every panel column, dense
``(N_panel, K)``, plus a validity mask and the last processed panel row. A stock uses its
previous value only if it was a member on the previous processed day and that day is the
directly preceding panel row; otherwise it starts from its own exposure. The carry is reset at
the start of every training epoch and goes cold after any gap (e.g. between the blocks sampled
by ``train_days_per_epoch``); validation continues from the training carry when the validation
days directly follow the training days; :func:`predict_exposures` starts cold, so predict over
the full history and slice.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from riskstudy.models.batch import BatchSource, DayBatch
from riskstudy.models.drm import DeepRiskModel, DRMConfig, smooth_exposures
from riskstudy.models.losses import DayLosses, drm_day_losses, label_valid

logger = logging.getLogger(__name__)

#: Fields that may differ between a checkpoint and the config used to resume it.
RESUMABLE_FIELDS: frozenset[str] = frozenset({"max_epochs", "patience", "device"})
HISTORY_COLUMNS: list[str] = ["epoch", "train_loss", "train_r2", "train_penalty",
                              "valid_loss", "valid_r2", "valid_penalty", "seconds"]


class Live(Protocol):
    """The part of ``dvclive.Live`` the trainer uses."""

    def log_metric(self, name: str, val: float) -> None: ...

    def next_step(self) -> None: ...


class ExposureCarry:
    """Smoothing state between batches (see module docstring).

    Parameters
    ----------
    n_factors : int
        K.
    device : torch.device
        Where the state lives. The buffer grows to the largest panel column seen.
    dtype : torch.dtype
        Dtype of the stored exposures (the model's).
    """

    def __init__(self, *, n_factors: int, device: torch.device, dtype: torch.dtype = torch.float32) -> None:
        self.state = torch.zeros(0, n_factors, device=device, dtype=dtype)  # (N_panel, K)
        self.valid = torch.zeros(0, dtype=torch.bool, device=device)  # (N_panel,)
        self.last_day: int | None = None

    def gather(self, batch: DayBatch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Previous exposures ``(M, K)``, their validity ``(M,)`` and day continuity ``(B,)`` for ``batch``."""
        n = int(batch.stock_idx.max()) + 1 if batch.stock_idx.numel() else 0
        if n > self.state.shape[0]:
            grow = n - self.state.shape[0]
            self.state = torch.cat([self.state, self.state.new_zeros(grow, self.state.shape[1])])
            self.valid = torch.cat([self.valid, self.valid.new_zeros(grow)])
        first = self.last_day is not None and int(batch.day_idx[0]) == self.last_day + 1
        continues = torch.cat([torch.tensor([first], device=batch.day_idx.device),
                               batch.day_idx[1:] == batch.day_idx[:-1] + 1])
        return self.state[batch.stock_idx], self.valid[batch.stock_idx], continues

    def update(self, batch: DayBatch, *, last: torch.Tensor, last_valid: torch.Tensor) -> None:
        """Store the batch's last-day smoothed exposures ``(M, K)``; everything else becomes invalid."""
        self.valid.zero_()
        self.state[batch.stock_idx] = last
        self.valid[batch.stock_idx] = last_valid
        self.last_day = int(batch.day_idx[-1])


def smoothed_exposures(model: DeepRiskModel, batch: DayBatch, carry: ExposureCarry) -> torch.Tensor:
    """Normalised then smoothed exposures ``(B, M, K)`` (0 off-mask); advances ``carry``."""
    f = model(batch.x, batch.mask, batch.size)
    prev, prev_valid, continues = carry.gather(batch)
    fs, last, last_valid = smooth_exposures(f, mask=batch.mask, prev=prev, prev_valid=prev_valid,
                                            continues=continues, rho=model.config.rho)
    carry.update(batch, last=last, last_valid=last_valid)
    return fs


def batch_losses(model: DeepRiskModel, batch: DayBatch, carry: ExposureCarry) -> DayLosses:
    """Per-day DRM losses of ``batch`` on the smoothed exposures (uses the first ``horizon`` labels)."""
    h = model.config.horizon
    if batch.y.shape[-1] < h:
        raise ValueError(f"DRMConfig.horizon={h} but the batch has only {batch.y.shape[-1]} label horizons")
    fs = smoothed_exposures(model, batch, carry)
    return drm_day_losses(fs, y=batch.y[..., :h], y_mask=batch.y_mask[..., :h], mask=batch.mask,
                          weight=batch.weight, lambda_=model.config.lambda_)


class Totals:
    """Sums of per-day loss terms over valid days (for epoch means) and their day count."""

    def __init__(self) -> None:
        self.n_days, self.loss, self.r2, self.penalty = 0, 0.0, 0.0, 0.0

    def add(self, d: DayLosses) -> None:
        """Accumulate the valid days of a batch."""
        v = d.valid.to(d.loss.dtype)
        sums = torch.stack([(t.detach() * v).sum() for t in (d.loss, d.r2, d.penalty)]).tolist()
        self.n_days += int(d.valid.sum())
        self.loss += sums[0]
        self.r2 += sums[1]
        self.penalty += sums[2]

    def merge(self, other: Totals) -> None:
        """Accumulate another :class:`Totals`."""
        self.n_days += other.n_days
        self.loss += other.loss
        self.r2 += other.r2
        self.penalty += other.penalty

    def means(self) -> dict[str, float]:
        """``{"loss", "r2", "penalty"}`` averaged over valid days (NaN if none)."""
        n = self.n_days or math.nan
        return {"loss": self.loss / n, "r2": self.r2 / n, "penalty": self.penalty / n}


def train_step(model: DeepRiskModel, optimizer: torch.optim.Optimizer, batch: DayBatch,
               carry: ExposureCarry) -> Totals:
    """One optimizer step on all ``B`` days of ``batch`` in a single forward/backward.

    The objective is the mean of the per-day losses over valid days. Gradients stay in
    ``.grad`` after the step. Returns the batch's loss sums.
    """
    optimizer.zero_grad(set_to_none=True)
    d = batch_losses(model, batch, carry)
    totals = Totals()
    totals.add(d)
    if totals.n_days:
        d.mean("loss").backward()
        optimizer.step()
    return totals


def day_slice(batch: DayBatch, b: int) -> DayBatch:
    """Day ``b`` of ``batch`` as a one-day batch restricted to that day's members."""
    keep = batch.mask[b]
    return DayBatch(x=batch.x[b:b + 1, keep], y=batch.y[b:b + 1, keep], y_mask=batch.y_mask[b:b + 1, keep],
                    mask=batch.mask[b:b + 1, keep], weight=batch.weight[b:b + 1, keep],
                    size=batch.size[b:b + 1, keep], stock_idx=batch.stock_idx[keep], day_idx=batch.day_idx[b:b + 1])


def train_step_per_day(model: DeepRiskModel, optimizer: torch.optim.Optimizer, batch: DayBatch,
                       carry: ExposureCarry) -> Totals:
    """Reference for :func:`train_step`: loop over days, accumulate ``loss_t / n_valid`` gradients, one step.

    Each day runs alone on its own members (no padding), so equality with :func:`train_step`
    also checks that padding and masks are inert.
    """
    optimizer.zero_grad(set_to_none=True)
    h = model.config.horizon
    w = batch.weight.unsqueeze(-1) * (batch.y_mask[..., :h] & batch.mask.unsqueeze(-1))
    n_valid = int(label_valid(w, n_factors=model.config.n_factors).any(-1).sum())
    totals = Totals()
    for b in range(batch.mask.shape[0]):
        d = batch_losses(model, day_slice(batch, b), carry)
        totals.add(d)
        if bool(d.valid.any()):
            (d.loss.sum() / n_valid).backward()
    if n_valid:
        optimizer.step()
    return totals


@torch.inference_mode()
def evaluate(model: DeepRiskModel, source: BatchSource, days: np.ndarray, *,
             carry: ExposureCarry | None = None) -> dict[str, float]:
    """Mean loss, R^2 and penalty over ``days`` in eval mode (no dropout, no gradients)."""
    model.eval()
    device = next(model.parameters()).device
    if carry is None:
        carry = ExposureCarry(n_factors=model.config.n_factors, device=device)
    totals = Totals()
    for batch in source.batches(days, model.config.batch_days):
        totals.add(batch_losses(model, batch.to(device), carry))
    return totals.means()


def epoch_blocks(train_days: np.ndarray, *, config: DRMConfig, epoch: int) -> list[np.ndarray]:
    """Training days of one epoch, as chronological blocks.

    All of ``train_days`` when ``config.train_days_per_epoch`` is ``None``; otherwise
    ``ceil(train_days_per_epoch / batch_days)`` distinct contiguous chunks of ``batch_days``
    days, drawn with a generator seeded by ``(seed, epoch)`` and sorted in time.
    """
    if config.train_days_per_epoch is None:
        return [train_days]
    chunks = [train_days[i:i + config.batch_days] for i in range(0, len(train_days), config.batch_days)]
    n = min(len(chunks), math.ceil(config.train_days_per_epoch / config.batch_days))
    pick = np.sort(np.random.default_rng([config.seed, epoch]).choice(len(chunks), size=n, replace=False))
    return [chunks[i] for i in pick]


@contextmanager
def _deterministic() -> Iterator[None]:
    """Temporarily request deterministic algorithms (warn-only where none exists)."""
    enabled = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(enabled, warn_only=warn_only)


@dataclass
class FitResult:
    """Output of :func:`fit_drm`.

    Attributes
    ----------
    model : DeepRiskModel
        Best-validation weights, eval mode.
    history : pandas.DataFrame
        One row per epoch: ``epoch, train_loss, train_r2, train_penalty, valid_loss, valid_r2,
        valid_penalty, seconds``.
    best_epoch : int
        Epoch (1-based) with the highest validation mean R^2.
    """

    model: DeepRiskModel
    history: pd.DataFrame
    best_epoch: int


def _save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)


def _rng_state() -> dict[str, Any]:
    return {"torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


def init_model(config: DRMConfig) -> DeepRiskModel:
    """The network at the seeded initialisation :func:`fit_drm` starts from (``torch.manual_seed(config.seed)``).

    Evaluated as it is, it is the "untrained network" control: what the architecture, the
    per-day normalisation and the exposure smoothing give before any gradient step.
    """
    torch.manual_seed(config.seed)
    return DeepRiskModel(config)


def fit_drm(
    source: BatchSource,
    *,
    train_days: np.ndarray,
    valid_days: np.ndarray,
    config: DRMConfig,
    checkpoint_path: str | os.PathLike | None = None,
    live: Live | None = None,
) -> FitResult:
    """Train a :class:`DeepRiskModel` with Adam, early stopping on validation mean R^2.

    Parameters
    ----------
    source : BatchSource
        Yields :class:`DayBatch` chunks.
    train_days, valid_days : numpy.ndarray of int
        Increasing panel rows; training runs in chronological order each epoch.
    config : DRMConfig
        Hyper-parameters.
    checkpoint_path : path-like, optional
        Written (atomically) after every epoch with config, model/optimizer state, epoch,
        history, RNG state and the best weights. If it exists, training resumes after its
        epoch; only ``max_epochs``, ``patience`` and ``device`` may differ from its config.
    live : dvclive.Live-like, optional
        Receives ``train|valid/{loss,r2,penalty}`` per epoch and ``next_step()``.

    Returns
    -------
    FitResult
        Model restored to the best validation epoch.
    """
    train_days, valid_days = np.asarray(train_days, dtype=np.int64), np.asarray(valid_days, dtype=np.int64)
    if len(train_days) == 0 or len(valid_days) == 0:
        raise ValueError(f"fit_drm needs non-empty train_days and valid_days, "
                         f"got {len(train_days)} and {len(valid_days)} days")
    device = config.resolved_device()
    model = init_model(config).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    history: list[dict[str, float]] = []
    best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    best_epoch, best_r2, start = 0, -math.inf, 0
    path = Path(checkpoint_path) if checkpoint_path is not None else None
    if path is not None and path.exists():
        ck = torch.load(path, map_location="cpu", weights_only=True)
        diff = sorted(k for k, v in config.to_dict().items() if k not in RESUMABLE_FIELDS and ck["config"].get(k) != v)
        if diff:
            raise ValueError(f"checkpoint {path} was written with a different DRMConfig: fields {diff}")
        model.load_state_dict(ck["model"])
        optimizer.load_state_dict(ck["optimizer"])
        history, best_state, start = ck["history"], ck["best_state"], ck["epoch"]
        best_epoch, best_r2 = ck["best_epoch"], ck["best_valid_r2"]
        _set_rng_state(ck["rng"])
        logger.info("resuming DRM training from %s after epoch %d", path, start)
    with _deterministic():
        for epoch in range(start + 1, config.max_epochs + 1):
            if epoch - 1 - best_epoch >= config.patience:
                logger.info("early stopping: no validation improvement for %d epochs", config.patience)
                break
            t0 = time.perf_counter()
            model.train()
            carry = ExposureCarry(n_factors=config.n_factors, device=device)
            train = Totals()
            blocks = epoch_blocks(train_days, config=config, epoch=epoch)
            n_batches = sum(math.ceil(len(b) / config.batch_days) for b in blocks)
            with tqdm(total=n_batches, desc=f"DRM epoch {epoch}", leave=False, disable=None) as bar:
                for block in blocks:
                    for batch in source.batches(block, config.batch_days):
                        step = train_step(model, optimizer, batch.to(device), carry)
                        train.merge(step)
                        bar.update()
            valid = evaluate(model, source, valid_days, carry=carry)
            row = {"epoch": epoch, **{f"train_{k}": v for k, v in train.means().items()},
                   **{f"valid_{k}": v for k, v in valid.items()}, "seconds": time.perf_counter() - t0}
            history.append(row)
            if valid["r2"] > best_r2:
                best_r2, best_epoch = valid["r2"], epoch
                best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
            logger.info("DRM epoch %d: train loss %.4f R2 %.4f penalty %.3f | valid R2 %.4f (best %.4f @ %d) | %.1fs",
                        epoch, row["train_loss"], row["train_r2"], row["train_penalty"], row["valid_r2"],
                        best_r2, best_epoch, row["seconds"])
            if live is not None:
                for k in ("loss", "r2", "penalty"):
                    live.log_metric(f"train/{k}", row[f"train_{k}"])
                    live.log_metric(f"valid/{k}", row[f"valid_{k}"])
                live.next_step()
            if path is not None:
                _save_checkpoint(path, {
                    "config": config.to_dict(), "epoch": epoch, "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(), "history": history, "best_state": best_state,
                    "best_epoch": best_epoch, "best_valid_r2": best_r2, "rng": _rng_state()})
    model.load_state_dict(best_state)
    model.eval()
    return FitResult(model=model, history=pd.DataFrame(history, columns=HISTORY_COLUMNS), best_epoch=best_epoch)


@torch.inference_mode()
def predict_exposures(model: DeepRiskModel, source: BatchSource, days: np.ndarray, *,
                      n_instruments: int | None = None) -> np.ndarray:
    """Smoothed exposures of ``days`` in eval mode, in time order from a cold smoothing state.

    Parameters
    ----------
    model : DeepRiskModel
    source : BatchSource
    days : numpy.ndarray of int, shape (T_d,)
        Increasing panel rows.
    n_instruments : int, optional
        Panel width N; default ``1 + `` the largest ``stock_idx`` seen.

    Returns
    -------
    numpy.ndarray, float32, shape (T_d, N, K)
        NaN off-universe.
    """
    model.eval()
    days = np.asarray(days, dtype=np.int64)
    device = next(model.parameters()).device
    carry = ExposureCarry(n_factors=model.config.n_factors, device=device)
    pieces = []
    for batch in source.batches(days, model.config.batch_days):
        batch = batch.to(device)
        fs = smoothed_exposures(model, batch, carry).masked_fill(~batch.mask.unsqueeze(-1), float("nan"))
        pieces.append((np.searchsorted(days, batch.day_idx.cpu().numpy()), batch.stock_idx.cpu().numpy(),
                       fs.float().cpu().numpy()))
    if n_instruments is None:
        n_instruments = max((int(cols.max()) + 1 for _, cols, _ in pieces if len(cols)), default=0)
    out = np.full((len(days), n_instruments, model.config.n_factors), np.nan, dtype=np.float32)
    for pos, cols, values in pieces:
        out[pos[:, None], cols[None, :]] = values
    return out

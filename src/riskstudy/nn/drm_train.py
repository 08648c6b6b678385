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
by ``train_days_per_epoch``). Validation never continues the training carry: it starts cold
``drm.burn_in_days`` rows before the first validation day and predicts those rows unscored
(:func:`burn_in_rows`), for trained and untrained networks alike, so a score does not depend on
where its window starts; :func:`predict_exposures` starts cold, so predict over the full history
and slice.

Training recipe
---------------
The paper trains on smoothed exposures (``rho = 0.99``) with a 64-day accumulation and a fixed
learning rate; the options (``rho_train``, ``batch_days``, ``train_days_per_epoch = None`` for one
continuous carry over all training days in order, ``lr_schedule``, ``lambda_warmup_steps``,
``train_stocks``) keep that recipe as one setting among others (see :class:`DRMTask`).

Training loop
-------------
:func:`fit_drm` is a :class:`DRMTask` run by the generic loop :func:`riskstudy.nn.loop.fit`,
which owns seeding, checkpoints and the run identity (config, days, inputs
(:func:`input_fingerprint`), code (:data:`TRAINING_MODULES`), environment), early stopping on
the validation mean R^2, dvclive and progress. Same-params reruns on one machine are
bit-identical (no nondeterministic operation: seeded init, dropout and block sampling,
deterministic CPU kernels); across thread counts (~ across machines) the float32 results differ
by round-off that training amplifies (see ``tests/nn/test_drm_train.py``).
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable
from dataclasses import fields

import numpy as np
import torch

from riskstudy.config import DRMParams
from riskstudy.features.batch import BatchSource, DayBatch
from riskstudy.nn import loop
from riskstudy.nn.drm import DeepRiskModel, smooth_exposures
from riskstudy.nn.loop import FitResult, Live, history_columns
from riskstudy.nn.losses import DayLosses, drm_day_losses, label_valid

logger = logging.getLogger(__name__)

#: Modules whose source computes a training result from (config, days, inputs): the code part of a
#: run identity. ``factors.drm_runs`` only chooses the config, days and inputs, which are hashed directly.
TRAINING_MODULES: tuple[str, ...] = (
    "riskstudy.features.batch", "riskstudy.nn.drm", "riskstudy.nn.encoders", "riskstudy.nn.losses", "riskstudy.nn.drm_train",
    "riskstudy.nn.loop", "riskstudy.features.drm_inputs", "riskstudy.features.weights", "riskstudy.features.windows",
    "riskstudy.data.panel",
)
#: Per-epoch metrics of a DRM run (history columns ``train_<m>``, ``valid_<m>``).
METRICS: tuple[str, ...] = ("loss", "r2", "r2_1d", "penalty")
HISTORY_COLUMNS: list[str] = history_columns(METRICS)


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


def smoothed_exposures(model: DeepRiskModel, batch: DayBatch, carry: ExposureCarry, *,
                       rho: float | None = None) -> torch.Tensor:
    """Normalised then smoothed exposures ``(B, M, K)`` (0 off-mask); advances ``carry``.

    ``rho`` defaults to ``model.config.rho`` (prediction and scoring); training passes
    :func:`training_rho`.
    """
    f = model(batch.x, batch.mask, batch.size)
    prev, prev_valid, continues = carry.gather(batch)
    fs, last, last_valid = smooth_exposures(f, mask=batch.mask, prev=prev, prev_valid=prev_valid, continues=continues,
                                            rho=model.config.rho if rho is None else rho)
    carry.update(batch, last=last, last_valid=last_valid)
    return fs


def batch_losses(model: DeepRiskModel, batch: DayBatch, carry: ExposureCarry, *,
                 rho: float | None = None, lambda_: float | None = None) -> DayLosses:
    """Per-day DRM losses of ``batch`` on the smoothed exposures.

    Uses the first ``drm.horizon`` label horizons of ``batch.y`` ``(B, M, H)``, all of them when
    it is ``None``. ``rho`` and ``lambda_`` default to the config's (training passes the
    training smoothing and the warmed-up penalty weight).
    """
    h = model.config.horizon
    if h is not None and batch.y.shape[-1] < h:
        raise ValueError(f"drm.horizon={h} but the batch has only {batch.y.shape[-1]} label horizons")
    fs = smoothed_exposures(model, batch, carry, rho=rho)
    return drm_day_losses(fs, y=batch.y[..., :h], y_mask=batch.y_mask[..., :h], mask=batch.mask,
                          weight=batch.weight, lambda_=model.config.lambda_ if lambda_ is None else lambda_)


class Totals:
    """Sums of the per-day loss terms :data:`METRICS` over valid days (for epoch means) and their day count."""

    def __init__(self) -> None:
        self.n_days = 0
        self.sums = dict.fromkeys(METRICS, 0.0)

    def add(self, d: DayLosses) -> None:
        """Accumulate the valid days of a batch."""
        v = d.valid.to(d.loss.dtype)
        sums = torch.stack([(getattr(d, m).detach() * v).sum() for m in METRICS]).tolist()
        self.n_days += int(d.valid.sum())
        for m, x in zip(METRICS, sums, strict=True):
            self.sums[m] += x

    def merge(self, other: Totals) -> None:
        """Accumulate another :class:`Totals`."""
        self.n_days += other.n_days
        for m in METRICS:
            self.sums[m] += other.sums[m]

    def means(self) -> dict[str, float]:
        """:data:`METRICS` averaged over valid days (NaN if none)."""
        n = self.n_days or math.nan
        return {m: x / n for m, x in self.sums.items()}


def training_rho(config: DRMParams) -> float:
    """Smoothing weight used while training: ``rho_train``, or ``rho`` when unset (the paper)."""
    return config.rho if config.rho_train is None else config.rho_train


def lambda_at(config: DRMParams, step: int) -> float:
    """Penalty weight at optimizer step ``step`` (0-based): ``lambda * min(1, (step + 1) / lambda_warmup_steps)``."""
    w = config.lambda_warmup_steps
    return config.lambda_ if w == 0 else config.lambda_ * min(1.0, (step + 1) / w)


def lr_at(config: DRMParams, step: int, total_steps: int) -> float:
    """Learning rate at step ``step`` of ``total_steps``: ``lr``, or its cosine decay to 0 (``lr_schedule``)."""
    if config.lr_schedule == "constant" or total_steps <= 1:
        return config.lr
    return config.lr * 0.5 * (1.0 + math.cos(math.pi * min(step, total_steps) / total_steps))


def subsample_stocks(batch: DayBatch, n: int, *, generator: torch.Generator) -> DayBatch:
    """The batch restricted to ``n`` random stocks among those that are members on any of its days.

    One subset for all the batch's days, so the smoothing carry stays continuous within the
    batch; the batch itself when it has at most ``n`` stocks.
    """
    cand = torch.nonzero(batch.mask.any(0)).flatten()
    if len(cand) <= n:
        return batch
    keep = cand[torch.randperm(len(cand), generator=generator)[:n].to(cand.device)].sort().values
    return DayBatch(x=batch.x[:, keep], y=batch.y[:, keep], y_mask=batch.y_mask[:, keep], mask=batch.mask[:, keep],
                    weight=batch.weight[:, keep], size=batch.size[:, keep], stock_idx=batch.stock_idx[keep],
                    day_idx=batch.day_idx)


def burn_in_rows(source: BatchSource, days: np.ndarray, *, n_days: int) -> np.ndarray:
    """The ``n_days`` panel rows before ``days[0]`` that have members: the smoothing burn-in of a scored window.

    Scoring from a cold smoothing state gives the first scored day's forward pass a weight that
    decays only as :math:`\\rho^t` (37% of the mean exposure weight over 250 days at
    :math:`\\rho = 0.99`); predicting the burn-in rows first (inputs only, no labels) makes the
    score independent of where the window starts, for trained and untrained models alike.
    """
    days = np.asarray(days, dtype=np.int64)
    if n_days == 0 or len(days) == 0:
        return days[:0]
    rows = np.arange(max(0, int(days[0]) - n_days), int(days[0]), dtype=np.int64)
    return rows[members_per_day(source, rows) > 0] if len(rows) else rows


def train_step(model: DeepRiskModel, optimizer: torch.optim.Optimizer, batch: DayBatch,
               carry: ExposureCarry, *, rho: float | None = None, lambda_: float | None = None) -> Totals:
    """One optimizer step on all ``B`` days of ``batch`` in a single forward/backward.

    The objective is the mean of the per-day losses over valid days. Gradients stay in
    ``.grad`` after the step. Returns the batch's loss sums. ``rho``, ``lambda_``: see
    :func:`batch_losses`.
    """
    optimizer.zero_grad(set_to_none=True)
    d = batch_losses(model, batch, carry, rho=rho, lambda_=lambda_)
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
                       carry: ExposureCarry, *, rho: float | None = None, lambda_: float | None = None) -> Totals:
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
        d = batch_losses(model, day_slice(batch, b), carry, rho=rho, lambda_=lambda_)
        totals.add(d)
        if bool(d.valid.any()):
            (d.loss.sum() / n_valid).backward()
    if n_valid:
        optimizer.step()
    return totals


@torch.inference_mode()
def evaluate(model: DeepRiskModel, source: BatchSource, days: np.ndarray, *,
             carry: ExposureCarry | None = None, burn_in: np.ndarray | None = None) -> dict[str, float]:
    """Means of :data:`METRICS` over ``days`` in eval mode (no dropout, no gradients).

    ``burn_in`` (panel rows directly before ``days``, :func:`burn_in_rows`) are predicted first
    to warm the smoothing state; they are not scored.
    """
    model.eval()
    device = next(model.parameters()).device
    if carry is None:
        carry = ExposureCarry(n_factors=model.config.n_factors, device=device)
    if burn_in is not None and len(burn_in):
        for batch in source.batches(np.asarray(burn_in, dtype=np.int64), model.config.batch_days):
            smoothed_exposures(model, batch.to(device), carry)
    totals = Totals()
    for batch in source.batches(days, model.config.batch_days):
        totals.add(batch_losses(model, batch.to(device), carry))
    return totals.means()


def score_exposures(exposures: np.ndarray, source: BatchSource, days: np.ndarray, *, horizon: int | None = None,
                    batch_days: int = 64) -> dict[str, float]:
    """The DRM validation metrics (:data:`METRICS`, ``lambda = 0``) of given exposures on ``days``.

    Scores any factor model's exposures with exactly the regression, labels and weights that
    score the network, so references (static PCA loadings, ...) sit in the same table.

    Parameters
    ----------
    exposures : numpy.ndarray, shape (T, N, K)
        On the full panel calendar; NaN or off-universe entries count as 0 exposure.
    source : BatchSource
    days : numpy.ndarray of int, shape (D,)
    horizon : int, optional
        Label horizons used (default all).
    """
    totals = Totals()
    for batch in source.batches(np.asarray(days, dtype=np.int64), batch_days):
        f = torch.as_tensor(np.nan_to_num(exposures[batch.day_idx.numpy()][:, batch.stock_idx.numpy()]),
                            dtype=batch.y.dtype) * batch.mask.unsqueeze(-1)
        totals.add(drm_day_losses(f, y=batch.y[..., :horizon], y_mask=batch.y_mask[..., :horizon], mask=batch.mask,
                                  weight=batch.weight, lambda_=0.0))
    return totals.means()


def epoch_blocks(train_days: np.ndarray, *, config: DRMParams, epoch: int) -> list[np.ndarray]:
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


def input_fingerprint(source: BatchSource, days: np.ndarray, *, batch_days: int) -> str:
    """Hash of the inputs a run reads.

    ``source.fingerprint()`` when the source has one (:class:`~riskstudy.features.drm_inputs.DRMDataset`:
    its prepared arrays, normaliser and feature settings); otherwise the bytes of every batch of
    ``days`` (``(D,)`` panel rows), which is exact but costs one pass over the data.
    """
    own = getattr(source, "fingerprint", None)
    if callable(own):
        return str(own())
    chunks = []
    for batch in source.batches(np.asarray(days, dtype=np.int64), batch_days):
        for f in fields(batch):
            t = getattr(batch, f.name).detach().cpu().contiguous()
            chunks += [f"{f.name}{tuple(t.shape)}{t.dtype}".encode(), t.numpy().tobytes()]
    return loop.digest(*chunks)


def _day_dates(source: BatchSource, days: np.ndarray) -> np.ndarray | None:
    dates = getattr(getattr(source, "panel", None), "dates", None)
    return None if dates is None else np.asarray(dates[days]).astype("datetime64[ns]").astype(np.int64)


def day_chunks(source: BatchSource, *, train_days: np.ndarray, valid_days: np.ndarray) -> list[bytes]:
    """The ``days`` part of a run identity: panel rows ``(D,)`` of both windows and, where the source has a panel, their dates."""
    chunks = [train_days.tobytes(), valid_days.tobytes()]
    for d in (train_days, valid_days):
        dates = _day_dates(source, d)
        chunks.append(b"" if dates is None else dates.tobytes())
    return chunks


def members_per_day(source: BatchSource, days: np.ndarray, *, batch_days: int = 64) -> np.ndarray:
    """Members of each of ``days`` ``(D,)``: ``source.members_per_day`` if it has one, else from its batches."""
    own = getattr(source, "members_per_day", None)
    if callable(own):
        return np.asarray(own(days), dtype=np.int64)
    return np.concatenate([b.mask.sum(1).cpu().numpy() for b in source.batches(days, batch_days)] or
                          [np.zeros(0, dtype=np.int64)]).astype(np.int64)


#: Largest share of a window's days whose cross-section may be too thin for K factors: such days are
#: data gaps (left out of the loss and the score by :func:`~riskstudy.nn.losses.label_valid`);
#: beyond this share K is too large for the universe.
MAX_THIN_SHARE: float = 0.05


def check_cross_sections(source: BatchSource, days: np.ndarray, *, config: DRMParams, window: str) -> None:
    """Raise ``ValueError`` when more than :data:`MAX_THIN_SHARE` of ``days`` have fewer than ``K + 2`` members.

    A day's regression on ``K`` factors and an intercept is identified only with more than
    ``K + 1`` observations (:func:`~riskstudy.nn.losses.label_valid`); such a day adds nothing
    to the loss or the score. A few thin days are data gaps (the CSI300 panel has 4 of its 706
    training days below K + 2 = 12 stocks, the smallest 7 stocks on 2012-06-29): they are
    logged, naming the smallest, and left out. When many days are thin, K is too large for the
    universe, and this raises before any training.
    """
    days = np.asarray(days, dtype=np.int64)
    if len(days) == 0:
        return
    counts = members_per_day(source, days, batch_days=config.batch_days)
    i = int(np.argmin(counts))
    need = config.n_factors + 2
    thin = counts < need
    if not thin.any():
        return
    dates = _day_dates(source, days[i:i + 1])
    when = f"{np.datetime64(int(dates[0]), 'ns').astype('datetime64[D]')} (panel row {days[i]})" \
        if dates is not None else f"panel row {days[i]}"
    what = (f"the regression on K factors and an intercept needs at least K + 2 = {need} stocks a day, but "
            f"{int(thin.sum())} of {len(days)} {window} days have fewer (smallest: {int(counts[i])} stocks on {when})")
    if thin.mean() > MAX_THIN_SHARE:
        raise ValueError(f"drm.n_factors K={config.n_factors} is too large for the {window} "
                         f"days: {what}, more than {MAX_THIN_SHARE:.0%}. Lower K or widen the universe.")
    logger.warning("K=%d, %s: those days are left out of the loss and the score", config.n_factors, what)


def init_model(config: DRMParams) -> DeepRiskModel:
    """The network at the seeded initialisation :func:`fit_drm` starts from (:func:`~riskstudy.nn.loop.seed_all` of ``config.seed``).

    Evaluated as it is, it is the "untrained network" control: what the architecture, the
    per-day normalisation and the exposure smoothing give before any gradient step.
    """
    loop.seed_all(config.seed)
    return DeepRiskModel(config)


def environment(config: DRMParams) -> dict[str, object]:
    """:func:`~riskstudy.nn.loop.environment` of the device ``config`` resolves to."""
    return loop.environment(config.resolved_device())


class DRMTask:
    """The Deep Risk Model as a :class:`~riskstudy.nn.loop.Task`: Adam, batched steps, score = validation mean R^2.

    Parameters
    ----------
    source : BatchSource
        Yields :class:`DayBatch` chunks.
    train_days, valid_days : numpy.ndarray of int, shape (D_train,), (D_valid,)
        Increasing panel rows; training runs in chronological order each epoch
        (:func:`epoch_blocks`).
    config : DRMParams
        The validated ``drm`` section of the run.
    valid_burn_in : numpy.ndarray of int, shape (D_burn,), optional
        Rows predicted before validation to warm the smoothing (default :func:`burn_in_rows` of
        ``config.burn_in_days``); every validation starts from a cold state at their first row.

    Each step ``s`` (0-based over the whole run) uses the learning rate :func:`lr_at`, the penalty
    weight :func:`lambda_at`, the smoothing :func:`training_rho` and, with ``train_stocks``, a
    random subset of the batch's stocks (:func:`subsample_stocks`, generator seeded by
    ``(seed, epoch)``), so a resumed epoch repeats exactly.
    """

    name = "DRM"
    metrics = METRICS
    score = "r2"
    modules = TRAINING_MODULES

    def __init__(self, source: BatchSource, *, train_days: np.ndarray, valid_days: np.ndarray,
                 config: DRMParams, valid_burn_in: np.ndarray | None = None) -> None:
        self.source, self.train_days, self.valid_days, self.params = source, train_days, valid_days, config
        self.valid_burn_in = (burn_in_rows(source, valid_days, n_days=config.burn_in_days) if valid_burn_in is None
                              else np.asarray(valid_burn_in, dtype=np.int64))
        self.config = config.to_dict()
        self.device = config.resolved_device()
        self.total_steps = sum(self.n_steps(e) for e in range(1, config.max_epochs + 1))

    def build_model(self) -> DeepRiskModel:
        return DeepRiskModel(self.params).to(self.device)

    def build_optimizer(self, model: DeepRiskModel) -> torch.optim.Optimizer:
        return torch.optim.Adam(model.parameters(), lr=self.params.lr)

    def n_steps(self, epoch: int) -> int:
        blocks = epoch_blocks(self.train_days, config=self.params, epoch=epoch)
        return sum(math.ceil(len(b) / self.params.batch_days) for b in blocks)

    def train_epoch(self, model: DeepRiskModel, optimizer: torch.optim.Optimizer, epoch: int, *,
                    progress: Callable[[], object]) -> tuple[dict[str, float], ExposureCarry]:
        """One :func:`train_step` per batch of the epoch's blocks, from a cold carry; returns the means and the carry."""
        cfg = self.params
        carry = ExposureCarry(n_factors=cfg.n_factors, device=self.device)
        gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + epoch)
        step = sum(self.n_steps(e) for e in range(1, epoch))
        train = Totals()
        for block in epoch_blocks(self.train_days, config=cfg, epoch=epoch):
            for batch in self.source.batches(block, cfg.batch_days):
                batch = batch.to(self.device)
                if cfg.train_stocks is not None:
                    batch = subsample_stocks(batch, cfg.train_stocks, generator=gen)
                for group in optimizer.param_groups:
                    group["lr"] = lr_at(cfg, step, self.total_steps)
                train.merge(train_step(model, optimizer, batch, carry, rho=training_rho(cfg), lambda_=lambda_at(cfg, step)))
                step += 1
                progress()
        return train.means(), carry

    def validate(self, model: DeepRiskModel, state: ExposureCarry | None) -> dict[str, float]:
        """Validation metrics from a cold state at the burn-in's first row (the training carry is not used)."""
        return evaluate(model, self.source, self.valid_days, burn_in=self.valid_burn_in)

    def data_parts(self) -> tuple[list[bytes], str]:
        days = day_chunks(self.source, train_days=self.train_days, valid_days=self.valid_days) + [self.valid_burn_in.tobytes()]
        inputs = input_fingerprint(self.source, np.concatenate([self.train_days, self.valid_burn_in, self.valid_days]),
                                   batch_days=self.params.batch_days)
        return days, inputs


def fit_drm(
    source: BatchSource,
    *,
    train_days: np.ndarray,
    valid_days: np.ndarray,
    config: DRMParams,
    checkpoint_path: str | os.PathLike | None = None,
    live: Live | None = None,
) -> FitResult:
    """Train a :class:`DeepRiskModel` with Adam, early stopping on validation mean R^2.

    Parameters
    ----------
    source : BatchSource
        Yields :class:`DayBatch` chunks.
    train_days, valid_days : numpy.ndarray of int, shape (D_train,), (D_valid,)
        Increasing panel rows.
    config : DRMParams
        The validated ``drm`` section of the run (``seed``, ``max_epochs``, ``patience`` included).
    checkpoint_path : path-like, optional
        See :func:`riskstudy.nn.loop.fit`: resumed only when unfinished and of the same run.
    live : dvclive.Live-like, optional
        Receives ``train|valid/{loss,r2,penalty}`` per epoch and ``next_step()``.

    Returns
    -------
    FitResult
        Model restored to the best validation epoch; history columns :data:`HISTORY_COLUMNS`.

    Raises
    ------
    ValueError
        Before any training, when a window is empty or too many of its days have fewer than
        ``K + 2`` members (:func:`check_cross_sections`); after an epoch whose training loss or
        validation R^2 is not finite.
    """
    train_days, valid_days = np.asarray(train_days, dtype=np.int64), np.asarray(valid_days, dtype=np.int64)
    if len(train_days) == 0 or len(valid_days) == 0:
        raise ValueError(f"fit_drm needs non-empty train_days and valid_days, "
                         f"got {len(train_days)} and {len(valid_days)} days")
    check_cross_sections(source, train_days, config=config, window="training")
    check_cross_sections(source, valid_days, config=config, window="validation")
    task = DRMTask(source, train_days=train_days, valid_days=valid_days, config=config)
    return loop.fit(task, max_epochs=config.max_epochs, patience=config.patience, seed=config.seed,
                    checkpoint_path=checkpoint_path, live=live)


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

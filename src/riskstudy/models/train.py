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

Checkpoints and run identity
----------------------------
A checkpoint stores the run's identity (:func:`run_identity`): hashes of the config, the
training/validation days, the inputs (:func:`input_fingerprint`), the code that computes the
result (:data:`TRAINING_MODULES`) and the environment (torch/numpy versions, device, torch
threads). :func:`fit_drm` resumes only an *unfinished* checkpoint whose identity equals the
current one; a finished run (early stop or ``max_epochs``) is never resumed, and anything else
starts fresh and says why. Same-params reruns on one machine are bit-identical (no
nondeterministic operation: seeded init, dropout and block sampling, deterministic CPU
kernels); across thread counts (~ across machines) the float32 results differ by round-off
that training amplifies (see ``tests/models/test_train.py``).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import math
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields
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

#: Config fields that may differ between an unfinished checkpoint and the config resuming it:
#: the stopping rule (resumed only while the checkpoint is a prefix of the run the new rule
#: gives, see :func:`_resume_refusal`) and the device *string* (the resolved device is part of
#: the environment identity, so ``"auto"`` and ``"cpu"`` on a CPU machine are the same run).
RESUMABLE_FIELDS: frozenset[str] = frozenset({"max_epochs", "patience", "device"})
#: Modules whose source computes a training result from (config, days, inputs): the code part of a
#: run identity. ``models.study`` only chooses the config, days and inputs, which are hashed directly.
TRAINING_MODULES: tuple[str, ...] = (
    "riskstudy.models.batch", "riskstudy.models.drm", "riskstudy.models.losses", "riskstudy.models.train",
    "riskstudy.features.drm_inputs", "riskstudy.risk.regression", "riskstudy.data.panel",
)
IDENTITY_PARTS: tuple[str, ...] = ("config", "days", "inputs", "code", "environment")
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
    environment : dict
        :func:`environment` of the run (versions, device, torch threads), stored with the results.
    """

    model: DeepRiskModel
    history: pd.DataFrame
    best_epoch: int
    environment: dict[str, object] | None = None


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


def _sha(*chunks: bytes) -> str:
    h = hashlib.sha256()
    for c in chunks:
        h.update(len(c).to_bytes(8, "little"))
        h.update(c)
    return h.hexdigest()[:20]


def _json(obj: object) -> bytes:
    return json.dumps(obj, sort_keys=True, default=str).encode()


def code_fingerprint() -> str:
    """Hash of the source files of :data:`TRAINING_MODULES` (as on disk now)."""
    chunks = []
    for name in TRAINING_MODULES:
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None:
            raise ImportError(f"cannot locate module {name} for the code fingerprint")
        chunks += [name.encode(), Path(spec.origin).read_bytes()]
    return _sha(*chunks)


def environment(config: DRMConfig) -> dict[str, object]:
    """What besides code and data decides a float result: library versions, device, torch threads."""
    device = config.resolved_device()
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    return {"torch": torch.__version__, "numpy": np.__version__, "device": f"{device.type}:{name}",
            "threads": torch.get_num_threads()}


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
    return _sha(*chunks)


def _day_dates(source: BatchSource, days: np.ndarray) -> np.ndarray | None:
    dates = getattr(getattr(source, "panel", None), "dates", None)
    return None if dates is None else np.asarray(dates[days]).astype("datetime64[ns]").astype(np.int64)


def run_identity(source: BatchSource, *, train_days: np.ndarray, valid_days: np.ndarray,
                 config: DRMConfig) -> dict[str, str]:
    """Hashes of everything that decides a :func:`fit_drm` result, one per :data:`IDENTITY_PARTS`.

    ``config`` leaves out :data:`RESUMABLE_FIELDS`; ``days`` covers the panel rows ``(D,)`` of both
    windows and, where the source has a panel, their dates.
    """
    cfg = {k: v for k, v in config.to_dict().items() if k not in RESUMABLE_FIELDS}
    day_chunks = [train_days.tobytes(), valid_days.tobytes()]
    for d in (train_days, valid_days):
        dates = _day_dates(source, d)
        day_chunks.append(b"" if dates is None else dates.tobytes())
    return {"config": _sha(_json(cfg)), "days": _sha(*day_chunks),
            "inputs": input_fingerprint(source, np.concatenate([train_days, valid_days]), batch_days=config.batch_days),
            "code": code_fingerprint(), "environment": _sha(_json(environment(config)))}


def members_per_day(source: BatchSource, days: np.ndarray, *, batch_days: int = 64) -> np.ndarray:
    """Members of each of ``days`` ``(D,)``: ``source.members_per_day`` if it has one, else from its batches."""
    own = getattr(source, "members_per_day", None)
    if callable(own):
        return np.asarray(own(days), dtype=np.int64)
    return np.concatenate([b.mask.sum(1).cpu().numpy() for b in source.batches(days, batch_days)] or
                          [np.zeros(0, dtype=np.int64)]).astype(np.int64)


#: Largest share of a window's days whose cross-section may be too thin for K factors: such days are
#: data gaps (left out of the loss and the score by :func:`~riskstudy.models.losses.label_valid`);
#: beyond this share K is too large for the universe.
MAX_THIN_SHARE: float = 0.05


def check_cross_sections(source: BatchSource, days: np.ndarray, *, config: DRMConfig, window: str) -> None:
    """Raise ``ValueError`` when more than :data:`MAX_THIN_SHARE` of ``days`` have fewer than ``K + 2`` members.

    A day's regression on ``K`` factors and an intercept is identified only with more than
    ``K + 1`` observations (:func:`~riskstudy.models.losses.label_valid`); such a day adds nothing
    to the loss or the score. A few thin days are data gaps (the CSI300 panel has one in its
    training window): they are logged, naming the smallest, and left out. When many days are thin,
    K is too large for the universe, and this raises before any training.
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
        raise ValueError(f"drm.n_factors (DRMConfig.n_factors) K={config.n_factors} is too large for the {window} "
                         f"days: {what}, more than {MAX_THIN_SHARE:.0%}. Lower K or widen the universe.")
    logger.warning("K=%d, %s: those days are left out of the loss and the score", config.n_factors, what)


def _resume_refusal(ck: dict[str, Any], identity: dict[str, str], config: DRMConfig) -> str | None:
    """Why checkpoint ``ck`` must not be resumed by a run of ``identity``/``config``; ``None`` = resume.

    The stopping rule may differ (:data:`RESUMABLE_FIELDS`) only while the checkpoint is a prefix
    of the run the new rule gives: its epoch is within ``max_epochs`` and the new ``patience``
    would not have stopped before any epoch it holds.
    """
    old = ck.get("identity")
    if not isinstance(old, dict):
        return "was written by a trainer without run identities"
    diff = [k for k in IDENTITY_PARTS if old.get(k) != identity[k]]
    if diff:
        return f"belongs to a different run (differs in: {'/'.join(diff)})"
    if ck.get("finished", True):
        return "holds a finished run (a finished run is never resumed)"
    if ck["epoch"] > config.max_epochs:
        return f"is at epoch {ck['epoch']}, past max_epochs={config.max_epochs}"
    best_epoch, best_r2 = 0, -math.inf
    for j, row in enumerate(ck["history"][:-1], start=1):  # epochs 1..e-1: would epoch j+1 have run?
        if row["valid_r2"] > best_r2:
            best_epoch, best_r2 = j, row["valid_r2"]
        if j - best_epoch >= config.patience:
            return f"would have stopped after epoch {j} with patience={config.patience}"
    return None


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
        Written (atomically) after every epoch with the run identity (:func:`run_identity`),
        a ``finished`` flag (early stop or ``max_epochs``), config, model/optimizer state,
        epoch, history, RNG state and the best weights. An existing checkpoint is resumed only
        when it is unfinished and of the same run (only :data:`RESUMABLE_FIELDS` may differ,
        see :func:`_resume_refusal`); otherwise it is removed and training starts fresh (logged).
    live : dvclive.Live-like, optional
        Receives ``train|valid/{loss,r2,penalty}`` per epoch and ``next_step()``.

    Returns
    -------
    FitResult
        Model restored to the best validation epoch.

    Raises
    ------
    ValueError
        Before any training, when a training or validation day has fewer than ``K + 2`` members
        (:func:`check_cross_sections`); after an epoch whose training loss or validation R^2 is
        not finite (no checkpoint is written for it).
    """
    train_days, valid_days = np.asarray(train_days, dtype=np.int64), np.asarray(valid_days, dtype=np.int64)
    if len(train_days) == 0 or len(valid_days) == 0:
        raise ValueError(f"fit_drm needs non-empty train_days and valid_days, "
                         f"got {len(train_days)} and {len(valid_days)} days")
    check_cross_sections(source, train_days, config=config, window="training")
    check_cross_sections(source, valid_days, config=config, window="validation")
    device = config.resolved_device()
    model = init_model(config).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    history: list[dict[str, float]] = []
    best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    best_epoch, best_r2, start = 0, -math.inf, 0
    path = Path(checkpoint_path) if checkpoint_path is not None else None
    identity: dict[str, str] = {}
    if path is not None:
        identity = run_identity(source, train_days=train_days, valid_days=valid_days, config=config)
    if path is not None and path.exists():
        try:
            ck = torch.load(path, map_location="cpu", weights_only=True)
            refusal = _resume_refusal(ck, identity, config)
        except (RuntimeError, EOFError, OSError, KeyError, TypeError, ValueError) as err:
            ck, refusal = None, f"cannot be read ({type(err).__name__}: {err})"
        if refusal is None:
            model.load_state_dict(ck["model"])
            optimizer.load_state_dict(ck["optimizer"])
            history, best_state, start = ck["history"], ck["best_state"], ck["epoch"]
            best_epoch, best_r2 = ck["best_epoch"], ck["best_valid_r2"]
            _set_rng_state(ck["rng"])
            logger.info("resuming DRM training from %s after epoch %d (same run identity)", path, start)
        else:
            logger.warning("checkpoint %s %s; starting fresh", path, refusal)
            path.unlink()
    finished = False

    def save(epoch: int) -> None:
        _save_checkpoint(path, {
            "identity": identity, "finished": finished, "config": config.to_dict(), "epoch": epoch,
            "model": model.state_dict(), "optimizer": optimizer.state_dict(), "history": history,
            "best_state": best_state, "best_epoch": best_epoch, "best_valid_r2": best_r2, "rng": _rng_state()})

    epoch = start
    with _deterministic():
        for epoch in range(start + 1, config.max_epochs + 1):
            if epoch - 1 - best_epoch >= config.patience:
                logger.info("early stopping: no validation improvement for %d epochs", config.patience)
                epoch -= 1
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
            if not (math.isfinite(row["train_loss"]) and math.isfinite(row["valid_r2"])):
                raise ValueError(f"DRM epoch {epoch}: non-finite training loss {row['train_loss']} or validation "
                                 f"R^2 {row['valid_r2']} (K={config.n_factors}); no checkpoint written for it")
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
            finished = epoch >= config.max_epochs or epoch - best_epoch >= config.patience
            if path is not None:
                save(epoch)
    if path is not None and not finished:  # stopped without a training epoch in this call (resumed at the end)
        finished = True
        save(epoch)
    model.load_state_dict(best_state)
    model.eval()
    return FitResult(model=model, history=pd.DataFrame(history, columns=HISTORY_COLUMNS), best_epoch=best_epoch,
                     environment=environment(config))


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

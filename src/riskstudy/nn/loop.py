"""One small training loop for every network of the study.

A network plugs in as a :class:`Task`: it builds its model and optimizer, runs one training
epoch, scores the model on validation data, and names the validation metric that early
stopping maximises. This module owns everything else, once:

* seeding (:func:`seed_all`) and deterministic kernels (:func:`_deterministic`);
* the run identity (:func:`run_identity`): hashes of the config, the days, the inputs, the
  code (:func:`code_fingerprint` of the task's modules) and the environment
  (:func:`environment`);
* checkpoints: written atomically after every epoch; an existing one is resumed only when it is
  unfinished and of the same run (:func:`_resume_refusal`), otherwise removed (logged);
* early stopping with ``patience`` on the validation score (higher is better), restoring the
  best weights;
* dvclive logging (:class:`Live`), tqdm progress, the non-finite guard;
* the :class:`FitResult`.

Same-params reruns on one machine are bit-identical when the task is: seeded initialisation,
RNG state saved with every checkpoint, deterministic algorithms requested during training.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import math
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

logger = logging.getLogger(__name__)

#: Config fields that may differ between an unfinished checkpoint and the config resuming it:
#: the stopping rule (resumed only while the checkpoint is a prefix of the run the new rule
#: gives, see :func:`_resume_refusal`) and the device *string* (the resolved device is part of
#: the environment identity, so ``"auto"`` and ``"cpu"`` on a CPU machine are the same run).
RESUMABLE_FIELDS: frozenset[str] = frozenset({"max_epochs", "patience", "device"})
IDENTITY_PARTS: tuple[str, ...] = ("config", "days", "inputs", "code", "environment")


class Live(Protocol):
    """The part of ``dvclive.Live`` the loop uses."""

    def log_metric(self, name: str, val: float) -> None: ...

    def next_step(self) -> None: ...


class Task(Protocol):
    """What a network supplies to :func:`fit`.

    Attributes
    ----------
    name : str
        Short name for logs and progress bars (``"DRM"``).
    metrics : tuple of str
        Keys of the dicts :meth:`train_epoch` and :meth:`validate` return, in history order;
        ``"loss"`` (training, guarded for finiteness) among them.
    score : str
        The validation metric early stopping maximises (one of ``metrics``).
    modules : tuple of str
        Modules whose source computes the result (the code part of the run identity).
    config : Mapping
        JSON-able settings of the run (identity and checkpoint; :data:`RESUMABLE_FIELDS` aside).
    device : torch.device
        Where the model trains.
    """

    name: str
    metrics: tuple[str, ...]
    score: str
    modules: tuple[str, ...]
    config: Mapping[str, object]
    device: torch.device

    def build_model(self) -> nn.Module:
        """The freshly initialised network on :attr:`device` (called right after :func:`seed_all`)."""
        ...

    def build_optimizer(self, model: nn.Module) -> torch.optim.Optimizer:
        """The optimizer of ``model``."""
        ...

    def n_steps(self, epoch: int) -> int:
        """Optimizer steps of ``epoch`` (the progress bar's length)."""
        ...

    def train_epoch(self, model: nn.Module, optimizer: torch.optim.Optimizer, epoch: int, *,
                    progress: Callable[[], object]) -> tuple[dict[str, float], Any]:
        """Train one epoch (1-based), calling ``progress()`` after every optimizer step.

        Returns the epoch's mean training metrics and the state validation continues from
        (``None`` if none).
        """
        ...

    def validate(self, model: nn.Module, state: Any) -> dict[str, float]:
        """Validation metrics of ``model`` (eval mode, no gradients), from the training ``state``."""
        ...

    def data_parts(self) -> tuple[list[bytes], str]:
        """The days (byte chunks to hash) and a fingerprint of the inputs: parts of :func:`run_identity`."""
        ...


@dataclass
class FitResult:
    """Output of :func:`fit`.

    Attributes
    ----------
    model : torch.nn.Module
        Best-validation weights, eval mode.
    history : pandas.DataFrame
        One row per epoch: ``epoch``, ``train_<metric>``, ``valid_<metric>`` for every metric of
        the task, ``seconds``.
    best_epoch : int
        Epoch (1-based) with the highest validation score; 0 = the initialisation.
    environment : dict
        :func:`environment` of the run (versions, device, torch threads), stored with the results.
    """

    model: nn.Module
    history: pd.DataFrame
    best_epoch: int
    environment: dict[str, object] | None = None


def seed_all(seed: int) -> None:
    """Seed every global generator a task draws from (torch CPU and CUDA)."""
    torch.manual_seed(seed)


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


def history_columns(metrics: Sequence[str]) -> list[str]:
    """``epoch, steps, train_<m>..., valid_<m>..., seconds`` for ``metrics`` (``steps``: optimizer steps so far)."""
    return ["epoch", "steps", *(f"train_{m}" for m in metrics), *(f"valid_{m}" for m in metrics), "seconds"]


def digest(*chunks: bytes) -> str:
    """Short SHA-256 of byte ``chunks``, each prefixed by its length (so chunk boundaries count)."""
    h = hashlib.sha256()
    for c in chunks:
        h.update(len(c).to_bytes(8, "little"))
        h.update(c)
    return h.hexdigest()[:20]


def _json(obj: object) -> bytes:
    return json.dumps(obj, sort_keys=True, default=str).encode()


def code_fingerprint(modules: Sequence[str]) -> str:
    """Hash of the source files of ``modules`` (dotted names, as on disk now)."""
    chunks = []
    for name in modules:
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None:
            raise ImportError(f"cannot locate module {name} for the code fingerprint")
        chunks += [name.encode(), Path(spec.origin).read_bytes()]
    return digest(*chunks)


def environment(device: torch.device) -> dict[str, object]:
    """What besides code and data decides a float result: library versions, device, torch threads."""
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    return {"torch": torch.__version__, "numpy": np.__version__, "device": f"{device.type}:{name}",
            "threads": torch.get_num_threads()}


def run_identity(task: Task) -> dict[str, str]:
    """Hashes of everything that decides a :func:`fit` result, one per :data:`IDENTITY_PARTS`.

    ``config`` leaves out :data:`RESUMABLE_FIELDS`; ``days`` and ``inputs`` come from
    :meth:`Task.data_parts`.
    """
    cfg = {k: v for k, v in task.config.items() if k not in RESUMABLE_FIELDS}
    days, inputs = task.data_parts()
    return {"config": digest(_json(cfg)), "days": digest(*days), "inputs": inputs,
            "code": code_fingerprint(task.modules), "environment": digest(_json(environment(task.device)))}


def _resume_refusal(ck: dict[str, Any], identity: dict[str, str], *, max_epochs: int, patience: int,
                    score: str) -> str | None:
    """Why checkpoint ``ck`` must not be resumed by a run of ``identity``; ``None`` = resume.

    The stopping rule may differ (:data:`RESUMABLE_FIELDS`) only while the checkpoint is a prefix
    of the run the new rule gives: its epoch is within ``max_epochs`` and the new ``patience``
    would not have stopped before any epoch it holds (on ``valid_<score>`` of its history).
    """
    old = ck.get("identity")
    if not isinstance(old, dict):
        return "was written by a trainer without run identities"
    diff = [k for k in IDENTITY_PARTS if old.get(k) != identity[k]]
    if diff:
        return f"belongs to a different run (differs in: {'/'.join(diff)})"
    if ck.get("finished", True):
        return "holds a finished run (a finished run is never resumed)"
    if ck["epoch"] > max_epochs:
        return f"is at epoch {ck['epoch']}, past max_epochs={max_epochs}"
    best_epoch, best = 0, -math.inf
    for j, row in enumerate(ck["history"][:-1], start=1):  # epochs 1..e-1: would epoch j+1 have run?
        if row[f"valid_{score}"] > best:
            best_epoch, best = j, row[f"valid_{score}"]
        if j - best_epoch >= patience:
            return f"would have stopped after epoch {j} with patience={patience}"
    return None


def _save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    """``torch.save`` to a temporary file, then rename: a kill never leaves half a checkpoint."""
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


def _cpu_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}


def fit(task: Task, *, max_epochs: int, patience: int, seed: int,
        checkpoint_path: str | os.PathLike | None = None, live: Live | None = None) -> FitResult:
    """Train ``task``'s model, early stopping on its validation score (higher is better).

    Parameters
    ----------
    task : Task
        The network, its data and its epoch.
    max_epochs, patience : int
        Epoch limit; stop after ``patience`` epochs without a new best validation score.
    seed : int
        :func:`seed_all` before :meth:`Task.build_model`.
    checkpoint_path : path-like, optional
        Written (atomically) after every epoch with the run identity (:func:`run_identity`), a
        ``finished`` flag (early stop or ``max_epochs``), config, model/optimizer state, epoch,
        history, RNG state and the best weights. An existing checkpoint is resumed only when it
        is unfinished and of the same run (only :data:`RESUMABLE_FIELDS` may differ, see
        :func:`_resume_refusal`); otherwise it is removed and training starts fresh (logged).
    live : dvclive.Live-like, optional
        Receives ``train|valid/<metric>`` per epoch and ``next_step()``.

    Returns
    -------
    FitResult
        Model restored to the best validation epoch.

    Raises
    ------
    ValueError
        After an epoch whose training loss or validation score is not finite (no checkpoint is
        written for it).
    """
    seed_all(seed)
    model = task.build_model()
    optimizer = task.build_optimizer(model)
    history: list[dict[str, float]] = []
    best_state = _cpu_state(model)
    best_epoch, best_score, start = 0, -math.inf, 0
    path = Path(checkpoint_path) if checkpoint_path is not None else None
    identity = run_identity(task) if path is not None else {}
    if path is not None and path.exists():
        try:
            ck = torch.load(path, map_location="cpu", weights_only=True)
            refusal = _resume_refusal(ck, identity, max_epochs=max_epochs, patience=patience, score=task.score)
        except (RuntimeError, EOFError, OSError, KeyError, TypeError, ValueError) as err:
            ck, refusal = None, f"cannot be read ({type(err).__name__}: {err})"
        if refusal is None:
            model.load_state_dict(ck["model"])
            optimizer.load_state_dict(ck["optimizer"])
            history, best_state, start = ck["history"], ck["best_state"], ck["epoch"]
            best_epoch, best_score = ck["best_epoch"], ck["best_score"]
            _set_rng_state(ck["rng"])
            logger.info("resuming %s training from %s after epoch %d (same run identity)", task.name, path, start)
        else:
            logger.warning("checkpoint %s %s; starting fresh", path, refusal)
            path.unlink()
    finished = False

    def save(epoch: int) -> None:
        _save_checkpoint(path, {
            "identity": identity, "finished": finished, "config": dict(task.config), "epoch": epoch,
            "model": model.state_dict(), "optimizer": optimizer.state_dict(), "history": history,
            "best_state": best_state, "best_epoch": best_epoch, "best_score": best_score, "rng": _rng_state()})

    epoch = start
    with _deterministic():
        for epoch in range(start + 1, max_epochs + 1):
            if epoch - 1 - best_epoch >= patience:
                logger.info("early stopping: no validation improvement for %d epochs", patience)
                epoch -= 1
                break
            t0 = time.perf_counter()
            model.train()
            with tqdm(total=task.n_steps(epoch), desc=f"{task.name} epoch {epoch}", leave=False, disable=None) as bar:
                train, state = task.train_epoch(model, optimizer, epoch, progress=bar.update)
            valid = task.validate(model, state)
            row = {"epoch": epoch, "steps": sum(task.n_steps(e) for e in range(1, epoch + 1)),
                   **{f"train_{k}": train[k] for k in task.metrics},
                   **{f"valid_{k}": valid[k] for k in task.metrics}, "seconds": time.perf_counter() - t0}
            score = row[f"valid_{task.score}"]
            if not (math.isfinite(row["train_loss"]) and math.isfinite(score)):
                raise ValueError(f"{task.name} epoch {epoch}: non-finite training loss {row['train_loss']} or "
                                 f"validation {task.score} {score}; no checkpoint written for it")
            history.append(row)
            if score > best_score:
                best_score, best_epoch = score, epoch
                best_state = _cpu_state(model)
            logger.info("%s epoch %d: %s | %s (best %s %.4f @ %d) | %.1fs", task.name, epoch,
                        "train " + " ".join(f"{k} {train[k]:.4f}" for k in task.metrics),
                        "valid " + " ".join(f"{k} {valid[k]:.4f}" for k in task.metrics),
                        task.score, best_score, best_epoch, row["seconds"])
            if live is not None:
                for k in task.metrics:
                    live.log_metric(f"train/{k}", row[f"train_{k}"])
                    live.log_metric(f"valid/{k}", row[f"valid_{k}"])
                live.next_step()
            finished = epoch >= max_epochs or epoch - best_epoch >= patience
            if path is not None:
                save(epoch)
    if path is not None and not finished:  # stopped without a training epoch in this call (resumed at the end)
        finished = True
        save(epoch)
    model.load_state_dict(best_state)
    model.eval()
    return FitResult(model=model, history=pd.DataFrame(history, columns=history_columns(task.metrics)),
                     best_epoch=best_epoch, environment=environment(task.device))

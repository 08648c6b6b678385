"""Tests for riskstudy.nn.loop with a toy task: early stopping, determinism, resume refusal."""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
import pytest
import torch
from torch import nn

from riskstudy.nn import loop


class ToyTask:
    """Least squares ``y = x w`` with a linear layer; the validation score is a scripted sequence or ``-MSE``."""

    name = "toy"
    metrics = ("loss", "score")
    score = "score"
    modules = ("riskstudy.nn.loop",)
    device = torch.device("cpu")

    def __init__(self, *, lr: float = 0.05, scores: list[float] | None = None, data_seed: int = 0) -> None:
        g = torch.Generator().manual_seed(data_seed)
        self.x = torch.randn(64, 3, generator=g)  # (S, P)
        self.y = self.x @ torch.tensor([1.0, -2.0, 0.5]) + 0.1 * torch.randn(64, generator=g)  # (S,)
        self.config = {"lr": lr, "max_epochs": 0, "patience": 0}
        self.lr, self.scores, self.data_seed, self.epoch = lr, scores, data_seed, 0

    def build_model(self) -> nn.Module:
        return nn.Sequential(nn.Linear(3, 8), nn.Dropout(0.2), nn.Linear(8, 1))

    def build_optimizer(self, model: nn.Module) -> torch.optim.Optimizer:
        return torch.optim.SGD(model.parameters(), lr=self.lr)

    def n_steps(self, epoch: int) -> int:
        return 4

    def train_epoch(self, model: nn.Module, optimizer: torch.optim.Optimizer, epoch: int, *,
                    progress: Callable[[], object]) -> tuple[dict[str, float], None]:
        losses = []
        for rows in torch.arange(64).split(16):
            optimizer.zero_grad()
            loss = (model(self.x[rows]).squeeze(-1) - self.y[rows]).square().mean()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
            progress()
        self.epoch = epoch
        return {"loss": float(np.mean(losses)), "score": -float(np.mean(losses))}, None

    @torch.inference_mode()
    def validate(self, model: nn.Module, state: None) -> dict[str, float]:
        model.eval()
        mse = float((model(self.x).squeeze(-1) - self.y).square().mean())
        score = self.scores[self.epoch - 1] if self.scores is not None else -mse
        return {"loss": mse, "score": score}

    def data_parts(self) -> tuple[list[bytes], str]:
        return [np.arange(64).tobytes()], loop.digest(self.x.numpy().tobytes(), self.y.numpy().tobytes())


def _same(a: loop.FitResult, b: loop.FitResult) -> None:
    assert a.history.drop(columns="seconds").equals(b.history.drop(columns="seconds"))
    assert a.best_epoch == b.best_epoch
    for (k, x), y in zip(a.model.state_dict().items(), b.model.state_dict().values()):
        assert torch.equal(x, y), k


def test_early_stopping_stops_at_patience_and_restores_the_best_weights() -> None:
    task = ToyTask(scores=[0.1, 0.5, 0.4, 0.3, 0.2, 0.9, 1.0])
    res = loop.fit(task, max_epochs=7, patience=2, seed=0)
    assert list(res.history.epoch) == [1, 2, 3, 4]  # best at 2, no gain in 3 and 4: stop
    assert res.best_epoch == 2 and list(res.history.columns) == loop.history_columns(task.metrics)
    # the returned weights are those after epoch 2: rerun for exactly 2 epochs
    _same_weights = loop.fit(ToyTask(scores=task.scores), max_epochs=2, patience=2, seed=0).model.state_dict()
    for (k, x), y in zip(res.model.state_dict().items(), _same_weights.values()):
        assert torch.equal(x, y), k
    assert not res.model.training


def test_deterministic_rerun_is_bit_identical_and_the_seed_matters() -> None:
    a = loop.fit(ToyTask(), max_epochs=3, patience=3, seed=1)
    _same(a, loop.fit(ToyTask(), max_epochs=3, patience=3, seed=1))
    c = loop.fit(ToyTask(), max_epochs=3, patience=3, seed=2)
    assert not np.array_equal(a.history.train_loss, c.history.train_loss)


def test_non_finite_score_raises_without_a_checkpoint(tmp_path) -> None:
    ck = tmp_path / "toy.pt"
    with pytest.raises(ValueError, match="toy epoch 2: non-finite"):
        loop.fit(ToyTask(scores=[0.1, float("nan")]), max_epochs=3, patience=3, seed=0, checkpoint_path=ck)
    assert torch.load(ck, weights_only=True)["epoch"] == 1


class _Stop(Exception):
    pass


def test_resume_rules(tmp_path, caplog) -> None:
    ck = tmp_path / "toy.pt"
    full = loop.fit(ToyTask(), max_epochs=3, patience=3, seed=0)

    class Interrupted(ToyTask):
        def validate(self, model: nn.Module, state: None) -> dict[str, float]:
            if self.epoch == 3:
                raise _Stop
            return super().validate(model, state)

    with pytest.raises(_Stop):
        loop.fit(Interrupted(), max_epochs=3, patience=3, seed=0, checkpoint_path=ck)
    assert torch.load(ck, weights_only=True)["epoch"] == 2 and not torch.load(ck, weights_only=True)["finished"]
    with caplog.at_level(logging.INFO, logger="riskstudy.nn.loop"):
        resumed = loop.fit(ToyTask(), max_epochs=3, patience=3, seed=0, checkpoint_path=ck)
    assert "resuming toy training" in caplog.text and "after epoch 2" in caplog.text
    _same(resumed, full)
    assert torch.load(ck, weights_only=True)["finished"]
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="riskstudy.nn.loop"):  # a finished run is never resumed
        again = loop.fit(ToyTask(), max_epochs=3, patience=3, seed=0, checkpoint_path=ck)
    assert "holds a finished run" in caplog.text and "resuming" not in caplog.text
    _same(again, full)
    torch.save({**torch.load(ck, weights_only=True), "finished": False}, ck)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="riskstudy.nn.loop"):  # a different run: other inputs, other config
        loop.fit(ToyTask(data_seed=1, lr=0.01), max_epochs=3, patience=3, seed=0, checkpoint_path=ck)
    assert "belongs to a different run (differs in: config/inputs)" in caplog.text and "resuming" not in caplog.text


def test_identity_ignores_only_resumable_fields() -> None:
    task = ToyTask()
    base = loop.run_identity(task)
    assert set(base) == set(loop.IDENTITY_PARTS)
    task.config = {**task.config, "max_epochs": 9, "patience": 9, "device": "cpu"}
    assert loop.run_identity(task) == base
    task.config = {**task.config, "lr": 0.5}
    assert loop.run_identity(task)["config"] != base["config"]

"""Typed config of the Sharpe-ratio section (``params.yaml`` key ``sharpe``, issue 13).

It lives beside the section's code (:data:`riskstudy.config.SECTIONS`): changing it reruns only this
section's stages. Windows are the section's own (the paper's evaluation window 2017-04-11 ..
2020-02-08 is the test window; training and validation precede it), not ``split``.
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Literal

from pydantic import Field, field_validator, model_validator

from riskstudy.config import _Strict, check_device, resolve_device

if TYPE_CHECKING:
    import torch

#: The direct networks' sequence encoders (one interface, :mod:`riskstudy.nn.encoders` and siblings).
#: ``"linear"`` is the reference: a linear score of the flattened window, same head, loss and loop.
NETWORKS: tuple[str, ...] = ("gru", "transformer", "tcn", "linear")


def distinct(v: list) -> list:
    """``v`` unchanged if its entries are distinct (a field validator's body)."""
    if len(set(v)) != len(v):
        raise ValueError(f"entries must be distinct, got {v}")
    return v


class SharpeNetConfig(_Strict):
    """The direct networks: encoder -> linear head -> bounded softmax, trained on negative Sharpe.

    ``hidden_size``/``num_layers``/``dropout`` are shared by the three encoders (the paper's GRU:
    128, 3, 0.3); ``optimizer`` ``"sam"`` is SAM around SGD with ``momentum`` and ``lr`` (the
    paper: 0.95, 0.025); ``"adam"`` uses ``adam_lr``.
    """

    networks: list[Literal["gru", "transformer", "tcn", "linear"]] = Field(default_factory=lambda: list(NETWORKS), min_length=1)
    hidden_size: int = Field(128, gt=0)
    num_layers: int = Field(3, gt=0)
    dropout: float = Field(0.3, ge=0, lt=1)
    n_heads: int = Field(4, gt=0)  # transformer
    patch: int = Field(3, ge=1)  # transformer: days per token (attention over seq_len / patch tokens)
    kernel_size: int = Field(3, gt=1)  # tcn
    optimizer: Literal["sam", "adam"] = "sam"
    lr: float = Field(0.025, gt=0)  # SGD inside SAM
    momentum: float = Field(0.95, ge=0, lt=1)
    rho: float = Field(0.05, gt=0)  # SAM neighbourhood
    adam_lr: float = Field(1e-3, gt=0)
    ablation_optimizer: Literal["sam", "adam", "none"] = "adam"  # the GRU retrained with this optimizer
    batch_decisions: int = Field(16, gt=1)  # contiguous decision days per optimizer step
    decision_stride: int = Field(5, gt=0)  # training decision days every this many trading days
    max_epochs: int = Field(30, gt=0)
    patience: int = Field(5, gt=0)
    seeds: list[int] = Field(default_factory=lambda: [0, 1, 2], min_length=1)
    hindsight_markets: list[Literal["us", "cn"]] = Field(default_factory=lambda: ["us"])  # GRU on the ex-post universe

    @field_validator("networks", "seeds")
    @classmethod
    def _distinct(cls, v: list) -> list:
        return distinct(v)


class SharpeCovNetConfig(_Strict):
    """The covariance-prediction network (Tian, Appendix A; :class:`~riskstudy.sharpe.covnet.CovNet`).

    ``n_factors`` implicit factors from the FRM style exposures; a GRU of ``hidden_size`` x
    ``num_layers`` gives the stock features; Adam with ``lr``; each step takes ``batch_days``
    contiguous training days out of every ``day_stride``-th (:class:`~riskstudy.sharpe.covnet_task.CovNetTask`).
    ``seeds``: one network per seed, each beside its untrained self.
    """

    n_factors: int = Field(6, gt=0)
    hidden_size: int = Field(32, gt=0)
    num_layers: int = Field(1, gt=0)
    lr: float = Field(1e-2, gt=0)
    batch_days: int = Field(32, gt=1)
    day_stride: int = Field(5, gt=0)
    max_epochs: int = Field(20, gt=0)
    patience: int = Field(5, gt=0)
    seeds: list[int] = Field(default_factory=lambda: [0, 1, 2], min_length=1)

    @field_validator("seeds")
    @classmethod
    def _distinct(cls, v: list) -> list:
        return distinct(v)


class SharpeConfig(_Strict):
    """Sharpe-ratio section (:mod:`riskstudy.sharpe`): universe, windows, networks, backtest rules.

    Decisions are taken at the close of a day from the last ``seq_len`` days; a portfolio is held
    for ``hold`` days; the backtest rebalances every ``rebalance_every`` days, moving no weight by
    more than ``max_change`` and paying ``cost_bps`` per unit of traded weight.
    """

    data_dir: str = "data/sharpe"  # prepared inputs and decisions: <data_dir>/<market>/
    start: dict[Literal["us", "cn"], date] = Field(default_factory=lambda: {"us": date(2001, 1, 1), "cn": date(2010, 1, 4)})
    end: date = date(2020, 3, 31)
    universe_rule: Literal["dollar_volume", "ex_post_return"] = "dollar_volume"
    n_stocks: int = Field(50, gt=1)
    universe_window: int = Field(252, gt=20)
    panel_top_n: int = Field(300, gt=1)  # US: the point-in-time dollar-volume universe the 50 are picked from
    train_end: date = date(2014, 12, 31)
    valid_start: date = date(2015, 1, 1)
    test_start: date = date(2017, 4, 11)
    test_end: date = date(2020, 2, 8)
    seq_len: int = Field(63, gt=1)
    hold: int = Field(21, gt=0)
    rebalance_every: int = Field(21, gt=0)
    risk_free: float = Field(0.02, ge=0)
    lower: float = 0.0  # weight bounds of the networks' weight layer (and of every long-only optimiser)
    upper: float = Field(1.0, gt=0)
    max_change: float = Field(0.10, gt=0, le=2)
    cost_bps: float = Field(10.0, ge=0)
    capital: float = Field(10_000.0, gt=0)
    mu_window: int = Field(252, gt=1)  # trailing mean of the max-Sharpe portfolios
    cov_window: int = Field(252, gt=1)  # trailing Ledoit-Wolf covariance
    n_boot: int = Field(2000, gt=99)  # block bootstrap of Sharpe differences
    boot_block: int = Field(21, gt=0)
    nets: SharpeNetConfig = SharpeNetConfig()
    covnet: SharpeCovNetConfig = SharpeCovNetConfig()
    drm_history: int = Field(750, gt=60)  # DRM route: exposures predicted from this many rows before the first test day
    device: str = "auto"
    workers: int | Literal["auto"] = "auto"  # processes for the seeded fits (each on one thread; results do not depend on it)

    @model_validator(mode="after")
    def _windows(self) -> "SharpeConfig":
        first = max(self.start.values()) if self.start else None
        order = [("start", first), ("train_end", self.train_end), ("valid_start", self.valid_start),
                 ("test_start", self.test_start), ("test_end", self.test_end), ("end", self.end)]
        for (a, da), (b, db) in zip(order, order[1:]):
            if da is not None and not da < db:
                raise ValueError(f"sharpe.{a} ({da}) must be before sharpe.{b} ({db})")
        return self

    @model_validator(mode="after")
    def _patch(self) -> "SharpeConfig":
        if self.seq_len % self.nets.patch:
            raise ValueError(f"sharpe.seq_len ({self.seq_len}) must be a multiple of sharpe.nets.patch ({self.nets.patch})")
        return self

    @model_validator(mode="after")
    def _bounds(self) -> "SharpeConfig":
        if not (self.n_stocks * self.lower <= 1 <= self.n_stocks * self.upper and self.lower < self.upper):
            raise ValueError(f"sharpe.lower/upper [{self.lower}, {self.upper}] cannot hold {self.n_stocks} weights summing to 1")
        return self

    @field_validator("device")
    @classmethod
    def _device(cls, v: str) -> str:
        return check_device(v, key="sharpe.device")

    @field_validator("workers")
    @classmethod
    def _workers(cls, v: int | str) -> int | str:
        if v != "auto" and v < 1:
            raise ValueError(f"sharpe.workers must be 'auto' or at least 1, got {v}")
        return v

    def check_profile(self, profile: str) -> None:
        """Outside the ``smoke`` profile every seeded network has at least 3 seeds."""
        for key, seeds in (("nets", self.nets.seeds), ("covnet", self.covnet.seeds)):
            if profile != "smoke" and len(seeds) < 3:
                raise ValueError(f"sharpe.{key}.seeds needs at least 3 seeds outside the smoke profile, got {seeds}")

    def resolved_device(self) -> "torch.device":
        """``device`` with ``"auto"`` resolved to CUDA when available, else CPU."""
        return resolve_device(self.device, key="sharpe.device")

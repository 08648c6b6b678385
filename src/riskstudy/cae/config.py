"""Typed config of the conditional autoencoder section (``params.yaml`` key ``cae``).

It lives beside the section's code (:data:`riskstudy.config.SECTIONS`), so changing it reruns only
the stages of this section, not the ones that depend on :mod:`riskstudy.config` alone.
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Literal

from pydantic import Field, field_validator, model_validator

from riskstudy.config import _Strict, check_device, resolve_device

if TYPE_CHECKING:
    import torch


#: The conditional autoencoders of Gu, Kelly, Xiu (2021) and their beta networks' hidden layers.
CAE_MODELS: dict[str, list[int]] = {"CA0": [], "CA1": [32], "CA2": [32, 16], "CA3": [32, 16, 8]}


class CAEConfig(_Strict):
    """Conditional autoencoder section (:mod:`riskstudy.cae`): characteristics, CA0-CA3 training, baselines.

    ``models`` name the beta networks to train, each with its hidden layers in ``hidden`` (CA0 is
    linear: no hidden layer); every model is fitted for every K in ``ks``, as an ensemble of
    ``n_seeds`` seeds (predictions averaged).
    """

    models: list[Literal["CA0", "CA1", "CA2", "CA3"]] = Field(default_factory=lambda: list(CAE_MODELS), min_length=1)
    ks: list[int] = Field(default_factory=lambda: [1, 2, 3, 4, 5, 6], min_length=1)
    hidden: dict[str, list[int]] = Field(default_factory=lambda: {k: list(v) for k, v in CAE_MODELS.items()})
    l1: float = Field(1e-5, ge=0)  # weight of the L1 penalty on the network weights (not biases, not batch norm)
    lr: float = Field(1e-3, gt=0)  # Adam
    max_epochs: int = Field(100, gt=0)
    patience: int = Field(10, gt=0)
    batch_periods: int = Field(12, gt=0)  # periods per optimizer step (all their members' stock-periods)
    n_seeds: int = Field(5, ge=1)  # ensemble size; at least 5 outside the smoke profile
    seed: int = Field(0, ge=0)  # first seed; the ensemble uses seed, seed + 1, ...
    refit_every_months: int = Field(12, gt=0)  # expanding-window refits
    frequency: Literal["monthly", "weekly"] = "monthly"
    market: Literal["equal", "value"] = "equal"  # the market return of beta (and of idiovol in China)
    beta_window: int = Field(252, gt=20)
    idio_window: int = Field(252, gt=20)
    ipca_max_iter: int = Field(1000, gt=0)
    ipca_tol: float = Field(1e-6, gt=0)
    pca_min_periods: int = Field(24, gt=0)  # training periods a stock needs for static PCA loadings
    n_valid: int = Field(12, gt=0)  # validation periods (early stopping) at the end of each refit's window
    min_train: int = Field(12, gt=0)  # training periods a refit needs before its validation periods
    max_missing: float | None = Field(0.5, ge=0, le=1)  # periods fitted only when at most this share is missing
    first_oos: date | None = None  # first out-of-sample label after this day; None: split.valid_start
    ff_window: int = Field(252, gt=20)  # trading days of the Fama-French beta regressions
    risk_model: Literal["CA0", "CA1", "CA2", "CA3"] = "CA1"  # the network whose betas enter the risk harness
    risk_k: int | None = Field(None, gt=0)  # K of the harness's CAE and IPCA rows; None: max(ks)
    device: str = "auto"

    @field_validator("ks")
    @classmethod
    def _ks(cls, v: list[int]) -> list[int]:
        bad = [k for k in v if k < 1]
        if bad or len(set(v)) != len(v):
            raise ValueError(f"every K must be a distinct integer >= 1, got {v}")
        return v

    @field_validator("models")
    @classmethod
    def _distinct(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError(f"models must be distinct, got {v}")
        return v

    @field_validator("hidden")
    @classmethod
    def _layers(cls, v: dict[str, list[int]]) -> dict[str, list[int]]:
        bad = {k: h for k, h in v.items() if any(u < 1 for u in h)}
        if bad:
            raise ValueError(f"hidden layer sizes must be >= 1, got {bad}")
        return v

    @model_validator(mode="after")
    def _every_model_has_layers(self) -> "CAEConfig":
        missing = [m for m in self.models if m not in self.hidden]
        if missing:
            raise ValueError(f"cae.hidden has no layer spec for models {missing}")
        if self.hidden.get("CA0", []) != []:
            raise ValueError(f"cae.hidden.CA0 must be [] (CA0 is the linear beta network), got {self.hidden['CA0']}")
        return self

    @model_validator(mode="after")
    def _risk_model_has_layers(self) -> "CAEConfig":
        if self.risk_model not in self.hidden:
            raise ValueError(f"cae.risk_model {self.risk_model!r} has no cae.hidden entry")
        return self

    def check_profile(self, profile: str) -> None:
        """Outside the ``smoke`` profile the ensemble has at least 5 seeds (:meth:`riskstudy.config.Params`)."""
        if profile != "smoke" and self.n_seeds < 5:
            raise ValueError(f"cae.n_seeds needs at least 5 (the ensemble) outside the smoke profile, got {self.n_seeds}")

    def harness_k(self) -> int:
        """K of the risk harness's rows: ``risk_k``, else ``max(ks)``."""
        return max(self.ks) if self.risk_k is None else self.risk_k

    @field_validator("device")
    @classmethod
    def _device(cls, v: str) -> str:
        return check_device(v, key="cae.device")

    def resolved_device(self) -> "torch.device":
        """``device`` with ``"auto"`` resolved to CUDA when available, else CPU; an unavailable CUDA raises."""
        return resolve_device(self.device, key="cae.device")

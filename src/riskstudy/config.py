"""Typed, validated configuration: one model per ``params.yaml`` section.

Every stage reads its own sections through :func:`load_params`; unknown keys and
bad values raise :class:`ConfigError` naming the offending key (e.g.
``drm.n_factors``). Profiles (``default``, ``paper``, ``smoke``) live in
``profiles/`` as overrides of the default file; :func:`write_profile` renders one
into ``params.yaml`` so that DVC tracks exactly what ran.
"""

from __future__ import annotations

import copy
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError, ValidationInfo, field_validator, model_validator

if TYPE_CHECKING:
    import torch

MARKETS = ("us", "cn")


class ConfigError(ValueError):
    """A configuration key is unknown or has a bad value; the message names the key."""


def check_device(v: str, *, key: str) -> str:
    """``v`` if it is ``"auto"`` or a torch device string, else ``ValueError`` naming ``key``."""
    if v != "auto":
        import torch  # only for a non-default device: keeps `import riskstudy.config` light

        try:
            torch.device(v)
        except (RuntimeError, TypeError) as err:
            raise ValueError(f"{key} must be 'auto' or a torch device, got {v!r}") from err
    return v


def resolve_device(v: str, *, key: str) -> "torch.device":
    """``"auto"`` as CUDA when available, else CPU; an explicit CUDA device that is not available raises naming ``key``."""
    import torch

    if v == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(v)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"{key}={v!r} but CUDA is not available (use 'auto' or 'cpu')")
    return device


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PathsConfig(_Strict):
    raw_dir: str = "data/raw"
    prepared_dir: str = "data/prepared"
    models_dir: str = "data/models"
    checkpoints_dir: str = "data/checkpoints"
    ablations_dir: str = "data/ablations"
    manifest_dir: str = "data/manifest"
    exposures_dir: str = "data/exposures"  # the exposure store: <exposures_dir>/<market>/<model>/<run>.npz
    scores_dir: str = "data/scores"  # one file of scores per (market, model): <scores_dir>/<market>/<model>.pkl
    reports_dir: str = "reports"


class SplitConfig(_Strict):
    """Train/valid/test windows (inclusive dates). Must be ordered and non-overlapping."""

    train_start: date
    train_end: date
    valid_start: date
    valid_end: date
    test_start: date
    test_end: date

    @model_validator(mode="after")
    def _ordered(self) -> "SplitConfig":
        for name in ("train", "valid", "test"):
            lo, hi = getattr(self, f"{name}_start"), getattr(self, f"{name}_end")
            if lo > hi:
                raise ValueError(f"split.{name}_start ({lo}) is after split.{name}_end ({hi}): empty window")
        if self.valid_start <= self.train_end:
            raise ValueError(f"split.valid_start ({self.valid_start}) must be after split.train_end ({self.train_end}): windows overlap")
        if self.test_start <= self.valid_end:
            raise ValueError(f"split.test_start ({self.test_start}) must be after split.valid_end ({self.valid_end}): windows overlap")
        return self

    def window(self, name: Literal["train", "valid", "test"]) -> tuple[pd.Timestamp, pd.Timestamp]:
        return pd.Timestamp(getattr(self, f"{name}_start")), pd.Timestamp(getattr(self, f"{name}_end"))


class USDataConfig(_Strict):
    start: date
    end: date
    top_n: int = Field(300, gt=0)
    universe_window: int = Field(252, gt=1)
    min_coverage: float = Field(0.9, gt=0, le=1)
    rebalance_every: int = Field(21, gt=0)
    max_ffill: int = Field(3, ge=0, le=10)
    jump_threshold: float = Field(0.5, gt=0)
    max_daily_move: float = Field(3.0, gt=0)
    max_price: float = Field(1e6, gt=0)
    max_tail_gap: int = Field(5, ge=0)
    on_error: Literal["raise", "skip"] = "raise"
    tickers: list[str] | None = None

    @model_validator(mode="after")
    def _bounds(self) -> "USDataConfig":
        if self.max_daily_move <= self.jump_threshold:
            raise ValueError(
                f"max_daily_move ({self.max_daily_move}) must exceed jump_threshold ({self.jump_threshold}): "
                "moves between them are repaired or kept, beyond max_daily_move they are errors"
            )
        return self


class CNDataConfig(_Strict):
    start: date
    end: date
    index: str = "csi300"
    benchmark: str = "sh000300"
    max_instruments: int | None = Field(None, gt=0)
    max_daily_move: float = Field(1.0, gt=0)
    max_price: float = Field(1e6, gt=0)
    on_error: Literal["raise", "skip"] = "raise"


class DataConfig(_Strict):
    us: USDataConfig
    cn: CNDataConfig


class FeaturesConfig(_Strict):
    """Deep Risk Model inputs and labels (see :mod:`riskstudy.features.drm_inputs`)."""

    lags: list[int] = Field(min_length=1)
    ma_window: int = Field(60, gt=1)
    clip: float = Field(3.0, gt=0)
    horizon: int = Field(20, ge=1)
    size_window: int = Field(20, ge=1)
    norm_sample_days: int = Field(250, ge=10)

    @field_validator("lags")
    @classmethod
    def _lags(cls, v: list[int]) -> list[int]:
        if any(d < 0 for d in v) or len(set(v)) != len(v):
            raise ValueError("lags must be distinct non-negative integers")
        return sorted(v, reverse=True)  # oldest first


class StyleConfig(_Strict):
    """Price/volume style factors of the fundamental baseline (FRM)."""

    beta_window: int = Field(252, gt=20)
    momentum_window: int = Field(252, gt=21)
    momentum_skip: int = Field(21, ge=0)
    resvol_window: int = Field(252, gt=20)
    liquidity_window: int = Field(21, gt=1)


class DRMParams(_Strict):
    """Deep Risk Model training (section 4 of the paper, authors' implementation details).

    The network (:class:`~riskstudy.nn.drm.DeepRiskModel`) and its trainer
    (:func:`~riskstudy.nn.drm_train.fit_drm`) take this section whole. One run's settings
    (``n_factors``, ``seed``, ``gat``, ``lambda``, ``horizon``, ...) are set by
    :meth:`with_overrides`, which validates again, so every rule is checked here only.
    ``seeds``, ``k_double``, ``train_start`` and ``valid_max_days`` choose the suite of runs and
    their days (:data:`SUITE_FIELDS`); they are not part of one run's settings (:meth:`to_dict`).
    """

    n_factors: int = Field(10, gt=0)
    hidden_size: int = Field(32, gt=0)
    encoder: Literal["gru", "linear"] = "gru"  # sequence encoder of both heads (riskstudy.nn.encoders.ENCODERS)
    num_layers: int = Field(2, gt=0)
    gat: StrictBool = True
    attn_dropout: float = Field(0.5, ge=0, lt=1)
    rho: float = Field(0.99, ge=0, lt=1)
    # smoothing weight while training; None = rho (the paper). 0 trains on unsmoothed exposures and applies rho after
    rho_train: float | None = Field(None, ge=0, lt=1)
    lambda_: float = Field(0.01, ge=0, alias="lambda")
    # lambda ramps linearly from 0 to `lambda` over the first `lambda_warmup_steps` optimizer steps (0 = the paper)
    lambda_warmup_steps: int = Field(0, ge=0)
    # None = every label horizon of features.horizon; an int uses the first `horizon` ones (1 = single task)
    horizon: int | None = Field(None, ge=1)
    lr: float = Field(2e-4, gt=0)
    # "constant" (the paper) or "cosine": lr * (1 + cos(pi * step / total_steps)) / 2 over max_epochs
    lr_schedule: Literal["constant", "cosine"] = "constant"
    batch_days: int = Field(64, gt=0)
    # stocks drawn per training batch (one random subset of the batch's members for all its days); None = all (paper)
    train_stocks: int | None = Field(None, gt=0)
    # validation (and the untrained control's score) start the smoothing this many panel rows before the first scored day
    burn_in_days: int = Field(250, ge=0)
    max_epochs: int = Field(100, gt=0)
    patience: int = Field(20, gt=0)
    train_days_per_epoch: int | None = Field(None, gt=0)
    gat_chunk_days: int = Field(8, gt=0)
    train_start: date | None = None
    valid_max_days: int | None = Field(None, gt=0)
    seeds: list[int] = Field(default_factory=lambda: [0, 1, 2], min_length=1)
    seed: int = Field(0, ge=0)  # the seed of one run (initialisation, dropout, block sampling); set from `seeds`
    k_double: int = Field(20, gt=0)
    device: str = "auto"

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    #: Fields that choose the suite of runs or their days, not the result of one run.
    SUITE_FIELDS: ClassVar[frozenset[str]] = frozenset({"seeds", "k_double", "train_start", "valid_max_days"})

    @model_validator(mode="after")
    def _even(self) -> "DRMParams":
        for name in ("n_factors", "k_double"):
            if getattr(self, name) % 2:
                raise ValueError(f"drm.{name} must be even (K/2 factors per branch), got {getattr(self, name)}")
        return self

    @field_validator("device")
    @classmethod
    def _device(cls, v: str) -> str:
        return check_device(v, key="drm.device")

    def with_overrides(self, **overrides: Any) -> "DRMParams":
        """This section with ``overrides`` (field names, e.g. ``lambda_=0.1``), validated again.

        Raises
        ------
        ConfigError
            Naming the offending ``drm.<key>``.
        """
        try:
            return DRMParams.model_validate({**self.model_dump(), **overrides})
        except ValidationError as err:
            raise ConfigError(_format_error(err, prefix="drm")) from None

    def to_dict(self) -> dict[str, object]:
        """One run's settings as plain JSON values (params.yaml keys, without :data:`SUITE_FIELDS`)."""
        return self.model_dump(mode="json", by_alias=True, exclude=set(self.SUITE_FIELDS))

    def resolved_device(self) -> "torch.device":
        """``device`` with ``"auto"`` resolved to CUDA when available, else CPU; an unavailable CUDA raises."""
        return resolve_device(self.device, key="drm.device")


def check_horizon(drm: DRMParams, features: FeaturesConfig) -> None:
    """Raise ``ValueError`` naming ``drm.horizon`` when it asks for more labels than ``features.horizon`` makes."""
    if drm.horizon is not None and drm.horizon > features.horizon:
        raise ValueError(f"drm.horizon ({drm.horizon}) exceeds features.horizon ({features.horizon}): the loss "
                         f"can use at most the {features.horizon} label horizons the features make "
                         "(omit drm.horizon to use all of them)")


class RiskConfig(_Strict):
    """The shared risk pipeline every factor model goes through (:mod:`riskstudy.risk.factor_model`):
    factor covariance (EWMA correlation / volatility, VRA, Newey-West, eigen adjustment), specific
    variance, and the forecast-quality portfolios."""

    corr_half_life: float = Field(240, gt=0)
    vol_half_life: float = Field(60, gt=0)
    vra_half_life: float = Field(20, gt=0)
    newey_west_lags: int = Field(0, ge=0)
    eigen_adjust: bool = False
    specific_half_life: float = Field(60, gt=0)
    specific_shrinkage: float = Field(0.1, ge=0, le=1)
    min_history: int = Field(60, ge=2)
    n_random_portfolios: int = Field(50, ge=0)
    seed: int = 0


class SRMConfig(_Strict):
    """SRM, the statistical risk model (:class:`~riskstudy.factors.srm.PCAFactorModel`): PCA of trailing returns.
    K is the DRM's (``drm.n_factors`` and ``drm.k_double``), so the two are compared at equal K."""

    window: int = Field(252, gt=10)
    refit_every: int = Field(21, ge=1)


class DenseConfig(_Strict):
    """Dense covariance estimators of Table 1 (GMV and GMV+ re-solved daily, like every factor model)."""

    window: int = Field(252, gt=10)
    # "sample" is defined only when window exceeds the number of stocks (else singular: refused at run time)
    estimators: list[Literal["sample", "ledoit_wolf", "poet"]] = Field(default_factory=lambda: ["ledoit_wolf", "poet"])
    poet_k: int = Field(10, gt=0)


class EvaluationConfig(_Strict):
    """Which registered models (:mod:`riskstudy.evaluation.registry`) Table 1 and the forecast table show, in order."""

    models: list[str] = Field(default_factory=lambda: ["frm", "srm", "drm", "dense"], min_length=1)
    table2_model: str = "DRM"  # the Table-1 row whose per-factor statistics (first seed) are Table 2 and Figure 3

    @field_validator("models")
    @classmethod
    def _distinct(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError(f"models must be distinct, got {v}")
        return v


class AblationsConfig(_Strict):
    markets: list[Literal["us", "cn"]] = Field(["us", "cn"], min_length=1)
    ks: list[int] = Field(min_length=1)
    lambdas: list[float] = Field(min_length=1)
    seeds: list[int] = Field(min_length=1)
    base_k: int = Field(10, gt=0)
    max_epochs: int = Field(gt=0)
    train_days_per_epoch: int | None = Field(None, gt=0)
    max_stocks: int | None = Field(None, gt=0)
    train_start: date | None = None
    valid_max_days: int | None = Field(None, gt=0)
    history_days: int | None = Field(None, gt=0)

    @field_validator("ks")
    @classmethod
    def _even(cls, v: list[int]) -> list[int]:
        bad = [k for k in v if k % 2 or k <= 0]
        if bad:
            raise ValueError(f"every K must be positive and even (K/2 factors per branch), got {bad}")
        return v

    @field_validator("base_k")
    @classmethod
    def _even_base(cls, v: int) -> int:
        if v % 2:
            raise ValueError(f"must be even (K/2 factors per branch), got {v}")
        return v

    @field_validator("lambdas")
    @classmethod
    def _penalties(cls, v: list[float]) -> list[float]:
        bad = [x for x in v if not (x >= 0 and x < float("inf"))]
        if bad:
            raise ValueError(f"every lambda must be a finite number >= 0 (the weight of the collinearity penalty), got {bad}")
        return v


class PlantedConfig(_Strict):
    """Synthetic planted-factor market of notebook 22 (:func:`~riskstudy.studies.planted.planted_factor_check`)."""

    n_days: int = Field(900, ge=700)  # the DRM inputs need ~300 days of history; training is the first half
    n_stocks: int = Field(120, ge=20)
    n_factors: int = Field(4, gt=0)
    n_sectors: int = Field(4, gt=0)
    seed: int = Field(0, ge=0)


#: Study sections whose typed config lives in the section's own package: ``params.yaml`` key ->
#: ``"module:Class"``. The class is imported only when its key is present, so a section's settings
#: change without touching this module (every stage depends on this file; a section's stages also
#: depend on its config module). Unknown keys inside a section raise :class:`ConfigError` naming them.
SECTIONS: dict[str, str] = {
    "cae": "riskstudy.cae.config:CAEConfig",
    "sharpe": "riskstudy.sharpe.config:SharpeConfig",
    "diagnostics": "riskstudy.diagnostics.config:DiagnosticsConfig",
}


def section_class(key: str) -> type[BaseModel]:
    """The config class of section ``key`` (:data:`SECTIONS`); ``ValueError`` if it is not available."""
    import importlib

    module, _, name = SECTIONS[key].partition(":")
    try:
        return getattr(importlib.import_module(module), name)
    except ModuleNotFoundError as err:
        raise ValueError(f"section '{key}' is not available in this version ({module} not found)") from err


def validate_section(key: str, raw: Any) -> BaseModel:
    """``raw`` (a mapping or an instance) as the typed config of section ``key``; errors name ``key.field``."""
    cls = section_class(key)
    if isinstance(raw, cls):
        return raw
    try:
        return cls.model_validate(raw)
    except ValidationError as err:
        raise ValueError("; ".join(_error_lines(err, prefix=key))) from None


class Params(_Strict):
    """All of ``params.yaml``. Outside the ``smoke`` profile every seed list holds at least 3 seeds."""

    profile: Literal["default", "paper", "smoke"]
    markets: list[Literal["us", "cn"]] = Field(min_length=1)
    paths: PathsConfig = PathsConfig()
    split: SplitConfig
    data: DataConfig
    features: FeaturesConfig
    style: StyleConfig = StyleConfig()
    srm: SRMConfig = SRMConfig()
    drm: DRMParams
    dense: DenseConfig = DenseConfig()
    risk: RiskConfig = RiskConfig()
    evaluation: EvaluationConfig = EvaluationConfig()
    ablations: AblationsConfig
    planted: PlantedConfig = PlantedConfig()
    # Study sections whose typed config lives beside their code (:data:`SECTIONS`); None when absent.
    cae: Any = None  # riskstudy.cae.config.CAEConfig
    sharpe: Any = None  # riskstudy.sharpe.config.SharpeConfig (issue 13)
    diagnostics: Any = None  # riskstudy.diagnostics.config.DiagnosticsConfig (issue 14)

    @field_validator(*SECTIONS, mode="before")
    @classmethod
    def _section(cls, v: Any, info: ValidationInfo) -> Any:
        return None if v is None else validate_section(info.field_name, v)

    @model_validator(mode="after")
    def _ablation_markets(self) -> "Params":
        extra = [m for m in self.ablations.markets if m not in self.markets]
        if extra:
            raise ValueError(f"ablations.markets {extra} are not in markets {self.markets}")
        return self

    @model_validator(mode="after")
    def _ablation_burn_in(self) -> "Params":
        h = self.ablations.history_days
        if h is not None and h < self.drm.burn_in_days:
            raise ValueError(f"ablations.history_days ({h}) must be at least drm.burn_in_days ({self.drm.burn_in_days}): "
                             "the test window is scored from a warm smoothing state")
        return self

    @model_validator(mode="after")
    def _drm_horizon(self) -> "Params":
        check_horizon(self.drm, self.features)
        return self

    @model_validator(mode="after")
    def _sections_fit_profile(self) -> "Params":
        for key in SECTIONS:
            section = getattr(self, key)
            if section is not None and hasattr(section, "check_profile"):
                section.check_profile(self.profile)
        return self

    @model_validator(mode="after")
    def _enough_seeds(self) -> "Params":
        if self.profile != "smoke":
            for key, seeds in (("drm.seeds", self.drm.seeds), ("ablations.seeds", self.ablations.seeds)):
                if len(seeds) < 3:
                    raise ValueError(f"{key} needs at least 3 seeds outside the smoke profile, got {seeds}")
        return self


def _error_lines(err: ValidationError, *, prefix: str | None = None) -> list[str]:
    lines = []
    for e in err.errors():
        loc = tuple(e["loc"])
        key = ".".join(str(p) for p in ((prefix,) if prefix else ()) + loc)
        if e["type"] == "extra_forbidden":
            lines.append(f"unknown key '{key}'")
        elif len(loc) == 1 and loc[0] in SECTIONS and e["type"] == "value_error":
            lines.append(e["msg"].removeprefix("Value error, "))  # validate_section's lines name the keys already
        else:
            msg = e["msg"].removeprefix("Value error, ")
            lines.append(f"bad value for '{key}': {msg}" if key else msg)
    return lines


def _format_error(err: ValidationError, *, prefix: str | None = None) -> str:
    return "invalid configuration: " + "; ".join(_error_lines(err, prefix=prefix))


def validate_params(raw: dict[str, Any]) -> Params:
    """Validate a params mapping; raise :class:`ConfigError` naming each bad key."""
    try:
        return Params.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(_format_error(err)) from None


def load_params(path: str | Path = "params.yaml") -> Params:
    """Read and validate ``params.yaml`` (or any params file)."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"params file {path} not found (run from the project root or pass params_file)")
    with path.open() as fh:
        raw = yaml.safe_load(fh) or {}
    return validate_params(raw)


def deep_merge(base: dict, override: dict) -> dict:
    """Recursively merge ``override`` into a copy of ``base`` (dicts merge, other values replace)."""
    out = copy.deepcopy(base)
    for k, v in override.items():
        out[k] = deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else copy.deepcopy(v)
    return out


def render_profile(name: str, profiles_dir: str | Path = "profiles") -> dict:
    """The params mapping of a profile: ``profiles/default.yaml`` merged with ``profiles/<name>.yaml``."""
    profiles_dir = Path(profiles_dir)
    base = yaml.safe_load((profiles_dir / "default.yaml").read_text())
    if name != "default":
        file = profiles_dir / f"{name}.yaml"
        if not file.exists():
            raise ConfigError(f"unknown profile '{name}': no {file}")
        base = deep_merge(base, yaml.safe_load(file.read_text()) or {})
    base["profile"] = name
    validate_params(base)
    return base


def write_profile(name: str, out: str | Path = "params.yaml", profiles_dir: str | Path = "profiles") -> Path:
    """Render profile ``name`` into ``out`` (validated first)."""
    params = render_profile(name, profiles_dir)
    header = f"# Rendered from profiles/{name}.yaml by `python -m riskstudy.config {name}`; edit freely and rerun.\n"
    Path(out).write_text(header + yaml.safe_dump(params, sort_keys=False, default_flow_style=None, width=120))
    return Path(out)


def main(argv: list[str] | None = None) -> None:
    import argparse

    ap = argparse.ArgumentParser(description="Render a profile into params.yaml, or validate params.yaml.")
    ap.add_argument("profile", nargs="?", help="default | paper | smoke (omit to only validate)")
    ap.add_argument("--out", default="params.yaml")
    ap.add_argument("--profiles-dir", default="profiles")
    args = ap.parse_args(argv)
    if args.profile:
        print(f"wrote {write_profile(args.profile, args.out, args.profiles_dir)} (profile {args.profile})")
    p = load_params(args.out)
    print(f"{args.out}: valid (profile {p.profile}, markets {p.markets})")


if __name__ == "__main__":
    main()

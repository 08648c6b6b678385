r"""The factor-model interface every model of the study implements.

A factor model maps a prepared market to daily risk-factor exposures :math:`X_t` (``N x K``),
known at the close of day ``t``. Everything after that (the cross-sectional regression of the
next day's returns on :math:`X_t`, factor covariance, specific risk, portfolios and forecast
quality) is the same code for every model (:mod:`riskstudy.evaluation.pipeline`).

::

    model = SomeFactorModel(config)            # one config section of params.yaml, passed whole
    model.fit(md, train_rows=rows)             # learns from the training rows only
    X = model.exposures(md, rows=eval_rows)    # (len(eval_rows), N, K), NaN off-universe
    model.names_                               # K factor names (set by fit)

``fit`` returns ``self`` and sets the fitted attributes (ending in ``_``); ``exposures`` must use,
for row ``t``, information up to the close of ``t`` only.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from riskstudy.config import Params
from riskstudy.data.market import MarketData
from riskstudy.factors.store import load_exposures


class FactorModel(ABC):
    """Base class of the study's factor models (see module docstring).

    Attributes
    ----------
    names_ : list of str
        The ``K`` factor names, set by :meth:`fit`.
    """

    names_: list[str]

    @abstractmethod
    def fit(self, md: MarketData, *, train_rows: np.ndarray, valid_rows: np.ndarray | None = None) -> "FactorModel":
        """Learn from the panel rows ``train_rows`` ``(T_train,)`` (and ``valid_rows`` for early stopping); returns ``self``."""

    @abstractmethod
    def exposures(self, md: MarketData, *, rows: np.ndarray) -> np.ndarray:
        """Exposures ``(len(rows), N, K)`` of the panel rows ``rows`` (increasing), NaN off-universe."""

    @property
    def n_factors(self) -> int:
        return len(self.names_)

    def full_exposures(self, md: MarketData, *, rows: np.ndarray) -> np.ndarray:
        """:meth:`exposures` of ``rows`` on the full panel calendar ``(T, N, K)``, NaN on every other row."""
        rows = np.asarray(rows, dtype=np.int64)
        x = self.exposures(md, rows=rows)
        out = np.full((md.panel.shape[0], *x.shape[1:]), np.nan)
        out[rows] = x
        return out


class StoredExposures(FactorModel):
    """Exposures a training stage already wrote to the exposure store (:mod:`riskstudy.factors.store`).

    Used to score networks trained in their own DVC stage (e.g. the Deep Risk Model): :meth:`fit`
    only checks that the file exists and matches the panel; the exposures are the stored ones.

    Parameters
    ----------
    path : path-like
        The ``.npz`` written by :func:`riskstudy.factors.store.save_exposures`.
    names : list of str
        Factor names (``K``).
    """

    def __init__(self, path: str | Path, *, names: list[str]) -> None:
        self.path = Path(path)
        self.names = list(names)

    def fit(self, md: MarketData, *, train_rows: np.ndarray, valid_rows: np.ndarray | None = None) -> "StoredExposures":
        self.exposures_ = load_exposures(self.path, md.panel.dates, md.panel.instruments)
        if self.exposures_.shape[-1] != len(self.names):
            raise ValueError(f"{self.path}: {self.exposures_.shape[-1]} factors stored, {len(self.names)} names given")
        self.names_ = self.names
        return self

    def exposures(self, md: MarketData, *, rows: np.ndarray) -> np.ndarray:
        return self.exposures_[np.asarray(rows, dtype=np.int64)]


@dataclass(frozen=True)
class Run:
    """One scored run of a registered model.

    Attributes
    ----------
    label : str
        Unique name of the run, e.g. ``"DRM x2 s1"``; also its exposure-store file name.
    group : str
        The Table-1 row it belongs to (``"DRM x2"``); runs of one group are its seeds.
    seed : int, optional
        The seed of a multi-seed row (``None`` for a single run).
    factor_model : callable returning a FactorModel, optional
        Builds the (unfitted) model; exactly one of ``factor_model`` and ``dense_method``.
    dense_method : str, optional
        A dense covariance estimator of :mod:`riskstudy.risk.estimators` (``"ledoit_wolf"``, ...).
    """

    label: str
    group: str
    seed: int | None = None
    factor_model: Callable[[], FactorModel] | None = None
    dense_method: str | None = None

    def __post_init__(self) -> None:
        if (self.factor_model is None) == (self.dense_method is None):
            raise ValueError(f"run {self.label!r}: give exactly one of factor_model and dense_method")


@dataclass(frozen=True)
class ModelSpec:
    """A model the pipeline can score.

    Attributes
    ----------
    key : str
        Registry key, as listed in ``evaluation.models`` and named in its DVC stage ``score_<key>``.
    runs : callable ``(params, market) -> list[Run]``
        The model's runs for a market, built from its config section (passed whole).
    trained_by : str, optional
        DVC stage that writes the exposures the runs read (e.g. ``"drm"``), named in the error
        when they are missing.
    required : callable ``(params, market) -> list[Path]``, optional
        Files that stage must have written; checked before any computation.
    """

    key: str
    runs: Callable[[Params, str], list[Run]]
    trained_by: str | None = None
    required: Callable[[Params, str], list[Path]] | None = None

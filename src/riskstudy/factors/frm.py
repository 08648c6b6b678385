"""FRM: the fundamental-style baseline, price/volume style factors (:mod:`riskstudy.features.style`).

Config section ``style``. Nothing is fitted: every exposure is a point-in-time transform of the
trailing data, so :meth:`StyleFactorModel.fit` only records the factor names.
"""

from __future__ import annotations

import numpy as np

from riskstudy.config import Params, StyleConfig
from riskstudy.data.market import MarketData
from riskstudy.factors.base import FactorModel, ModelSpec, Run
from riskstudy.features.style import STYLE_FACTORS, style_factors


class StyleFactorModel(FactorModel):
    """Style exposures (size, beta, momentum, residual volatility, non-linear size, liquidity).

    Parameters
    ----------
    config : StyleConfig
        The ``style`` section.
    """

    def __init__(self, config: StyleConfig) -> None:
        self.config = config

    def fit(self, md: MarketData, *, train_rows: np.ndarray, valid_rows: np.ndarray | None = None) -> "StyleFactorModel":
        self.names_ = list(STYLE_FACTORS)
        return self

    def exposures(self, md: MarketData, *, rows: np.ndarray) -> np.ndarray:
        return style_factors(md.panel, md.benchmark, **self.config.model_dump())[np.asarray(rows, dtype=np.int64)]


def _runs(params: Params, market: str) -> list[Run]:
    return [Run("FRM", "FRM", factor_model=lambda: StyleFactorModel(params.style))]


#: Registered as ``frm`` (:mod:`riskstudy.evaluation.registry`): one row, "FRM".
SPEC = ModelSpec("frm", runs=_runs)

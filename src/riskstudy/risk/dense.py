"""The dense covariance estimators as rows of Table 1 (config section ``dense``).

They have no factor structure: the pipeline builds an ``N x N`` forecast per test day from the
trailing ``dense.window`` days (:func:`~riskstudy.risk.estimators.trailing_covariance`) and takes it
through the same portfolio and forecast-quality steps as every factor model.
"""

from __future__ import annotations

from riskstudy.config import Params
from riskstudy.factors.base import ModelSpec, Run

#: Table-1 row names of the estimators.
LABELS = {"sample": "Sample cov", "ledoit_wolf": "Ledoit-Wolf", "poet": "POET"}


def _runs(params: Params, market: str) -> list[Run]:
    return [Run(LABELS[m], LABELS[m], dense_method=m) for m in params.dense.estimators]


#: Registered as ``dense``: one row per estimator of ``dense.estimators``.
SPEC = ModelSpec("dense", runs=_runs)

"""riskstudy: a reproducible study of deep-learning risk factor models.

Sub-packages are organised by concept:

- :mod:`riskstudy.data` -- raw-data sources (US CSVs, yfinance, qlib, Fama-French),
  cleaning, universe selection and the :class:`~riskstudy.data.panel.Panel` container.
- :mod:`riskstudy.features` -- Deep Risk Model inputs/labels (the :class:`~riskstudy.features.batch.DayBatch`
  contract) and style factors.
- :mod:`riskstudy.nn` -- the networks (Deep Risk Model) and the one training loop they share.
- :mod:`riskstudy.factors` -- factor-model runs as the study uses them (DRM datasets, splits, suites).
- :mod:`riskstudy.risk` -- cross-sectional regression, factor covariance, estimators.
- :mod:`riskstudy.portfolio` -- GMV / GMV+ optimisation, backtests, portfolio metrics.
- :mod:`riskstudy.evaluation` -- factor diagnostics and forecast-quality statistics.
- :mod:`riskstudy.studies` -- stage entry points that train networks (ablations, planted check).
- :mod:`riskstudy.config` -- typed, validated per-stage configuration.
"""

__version__ = "0.1.0"

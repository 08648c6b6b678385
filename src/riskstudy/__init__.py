"""riskstudy: a reproducible study of deep-learning risk factor models.

Sub-packages are layers; a module imports only from its own layer or lower ones
(``tests/test_architecture.py``):

- :mod:`riskstudy.data` -- raw-data sources (US CSVs, yfinance, qlib, Fama-French),
  cleaning, universe selection and the :class:`~riskstudy.data.panel.Panel` container.
- :mod:`riskstudy.features` -- network inputs/labels, day batches, style factors, return windows.
- :mod:`riskstudy.nn` -- networks, their losses, and the one training loop.
- :mod:`riskstudy.factors` -- the :class:`~riskstudy.factors.base.FactorModel` interface, its
  models (FRM, SRM, DRM) and the exposure store.
- :mod:`riskstudy.risk` -- the :class:`~riskstudy.risk.model.RiskModel` interface,
  cross-sectional regression, factor covariance, dense estimators.
- :mod:`riskstudy.portfolio` -- GMV / GMV+ / max-Sharpe optimisation, backtests, portfolio metrics.
- :mod:`riskstudy.evaluation` -- the one scoring pipeline, its registry, factor diagnostics,
  forecast quality and the study's claims.
- :mod:`riskstudy.reporting` -- metrics files and the summary.
- :mod:`riskstudy.studies` -- DVC stage entry points.
- :mod:`riskstudy.config` -- typed, validated per-stage configuration.
"""

__version__ = "0.1.0"

"""Conditional autoencoder section (Gu, Kelly, Xiu 2021): characteristics, CA0-CA3, IPCA and PCA baselines, scores.

Modules: ``characteristics`` (point-in-time ranked characteristics, labels, managed portfolios), ``models``
(CA0-CA3 and the seed ensemble), ``ipca`` (IPCA by ALS and via the ``ipca`` package, static PCA), ``scores``
(total / predictive R^2), ``planted`` (planted panels), ``refit`` (expanding-window out-of-sample evaluation),
``famafrench_model`` (FF3 / FF5 time-series baselines), ``factor_model`` (CAE and IPCA as harness factor models)
and ``study`` (one market's section: metrics and timings).
"""

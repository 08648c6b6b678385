"""Benchmark: long-only GMV with a factor-form problem compiled once per universe vs a dense problem rebuilt daily.

``python -m riskstudy.bench_portfolio [--n 320] [--absent 0.05] [--p 25] [--days 30] [--solver CLARABEL]``

Both solve the same GMV+ problem on a synthetic factor model that changes every
day, as in the evaluation: the universe is a panel of ``n`` stocks of which a
random share ``absent`` is missing each day, so the day's model covers a different
set (and number) of stocks every day. The factor form
(:class:`~riskstudy.portfolio.optimize.GMVLongOnly` with ``capacity=n``) is compiled
once for the universe and then only updates parameter values (loadings, specific
variances and the mask of the day's stocks); the dense baseline
(:func:`~riskstudy.portfolio.optimize.gmv_long_only_dense`) forms
``Sigma = X F X' + D`` over the day's stocks and builds and canonicalises a new
problem every day. The two are timed day by day, alternately, so that a change of
machine load affects both alike.

Reported: the factor form's first solve (one-off compilation included), its
steady-state re-solves per second, the dense solves per second, the speed-up
(steady state and including the compilation), the number of compilations, the
largest absolute weight difference and the largest relative difference of the
portfolio variances. The dense baseline is BLAS-bound: on a busy machine
multi-threaded OpenBLAS can slow it (and inflate the speed-up) several-fold, so
compare runs made with the same ``OPENBLAS_NUM_THREADS``.
"""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Sequence

import numpy as np

from riskstudy.portfolio.optimize import GMVLongOnly, gmv_long_only_dense
from riskstudy.risk.covariance import FactorRiskModel

logger = logging.getLogger(__name__)


def synthetic_models(*, n: int, p: int, days: int, seed: int = 0) -> list[FactorRiskModel]:
    """``days`` random factor models: ``X ~ N(0,1)`` with a market column, ``F`` Wishart, ``d`` ~ (1-3% daily vol)^2."""
    rng = np.random.default_rng(seed)
    models = []
    for _ in range(days):
        X = rng.standard_normal((n, p))
        X[:, 0] = 1.0 + 0.3 * rng.standard_normal(n)
        A = rng.standard_normal((p, 2 * p)) * 0.004
        F = A @ A.T / (2 * p) + np.diag(np.r_[1e-4, np.full(p - 1, 1e-5)])
        d = rng.uniform(0.01, 0.03, n) ** 2
        models.append(FactorRiskModel(X, F, d))
    return models


def universe_models(*, n: int, p: int, days: int, absent: float = 0.05, seed: int = 0) -> list[FactorRiskModel]:
    """:func:`synthetic_models` over a panel of ``n`` stocks, each stock missing on a day with probability ``absent``.

    Returns
    -------
    list of FactorRiskModel
        Day ``t``'s model over its present stocks: ``exposures`` (N_t, P), ``specific_var`` (N_t,)
        and ``assets`` (N_t,), their positions in the panel; ``N_t ~ Binomial(n, 1 - absent)``.
    """
    rng = np.random.default_rng(seed + 1)
    out = []
    for m in synthetic_models(n=n, p=p, days=days, seed=seed):
        assets = np.flatnonzero(rng.random(n) >= absent)
        out.append(FactorRiskModel(m.exposures[assets], m.factor_cov, m.specific_var[assets], assets))
    return out


def run(*, n: int, p: int, days: int, solver: str, absent: float = 0.05, seed: int = 0) -> dict[str, float]:
    """Time both approaches on the same ``days`` models of a universe of ``n`` stocks.

    Returns
    -------
    dict
        ``compile_s`` (first factor-form solve, including CVXPY's one-off compilation),
        ``factor_solves_per_s`` (the re-solves after it), ``factor_solves_per_s_incl_compile``,
        ``dense_solves_per_s``, ``speedup`` (steady state) and ``speedup_incl_compile``,
        ``n_compiles`` (factor-form compilations: 1), ``n_assets_min`` / ``n_assets_max``
        (stocks per day), ``max_abs_weight_diff`` and ``max_rel_variance_diff`` between the
        two solutions (the GMV+ objective is flat near its optimum: at Clarabel's default
        tolerances weights agree to ~3e-5 while the portfolio variances agree to ~1e-7).
    """
    models = universe_models(n=n, p=p, days=days, absent=absent, seed=seed)
    opt = GMVLongOnly(solver=solver, capacity=n)
    t_fast, t_dense, w_fast, w_dense = np.zeros(days), np.zeros(days), [], []
    for i, m in enumerate(models):
        t0 = time.perf_counter()
        w_fast.append(opt.solve(m))
        t1 = time.perf_counter()
        w_dense.append(gmv_long_only_dense(m.covariance(), solver=solver))
        t_fast[i], t_dense[i] = t1 - t0, time.perf_counter() - t1
    var = np.array([[m.portfolio_variance(a), m.portfolio_variance(b)] for m, a, b in zip(models, w_fast, w_dense)])
    steady = (days - 1) / t_fast[1:].sum()
    sizes = [m.n_assets for m in models]
    return {
        "compile_s": float(t_fast[0]),
        "factor_solves_per_s": steady,
        "factor_solves_per_s_incl_compile": days / t_fast.sum(),
        "dense_solves_per_s": days / t_dense.sum(),
        "speedup": steady * t_dense.sum() / days,
        "speedup_incl_compile": t_dense.sum() / t_fast.sum(),
        "n_compiles": opt.n_compiles_,
        "n_assets_min": min(sizes),
        "n_assets_max": max(sizes),
        "max_abs_weight_diff": float(max(np.abs(a - b).max() for a, b in zip(w_fast, w_dense))),
        "max_rel_variance_diff": float(np.abs(var[:, 0] / var[:, 1] - 1).max()),
    }


def main(argv: Sequence[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(prog="python -m riskstudy.bench_portfolio", description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=320, help="stocks in the universe (panel)")
    parser.add_argument("--absent", type=float, default=0.05, help="probability that a stock is missing on a day")
    parser.add_argument("--p", type=int, default=25, help="factors")
    parser.add_argument("--days", type=int, default=30, help="daily re-solves")
    parser.add_argument("--solver", default="CLARABEL", choices=["CLARABEL", "OSQP"])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    res = run(n=args.n, p=args.p, days=args.days, solver=args.solver, absent=args.absent, seed=args.seed)
    print(f"GMV+ (long-only min variance), universe of {args.n} stocks ({100 * args.absent:g}% absent each day: "
          f"N = {res['n_assets_min']}-{res['n_assets_max']}), P={args.p}, {args.days} days, solver {args.solver}")
    print(f"  factor form, first solve incl. compile: {1e3 * res['compile_s']:8.1f} ms")
    print(f"  factor form, compiled once, re-solves : {res['factor_solves_per_s']:8.1f} solves/s "
          f"({res['factor_solves_per_s_incl_compile']:.1f} incl. compile; compilations: {res['n_compiles']})")
    print(f"  dense problem rebuilt each day        : {res['dense_solves_per_s']:8.1f} solves/s")
    print(f"  speed-up                              : {res['speedup']:8.1f}x "
          f"({res['speedup_incl_compile']:.1f}x incl. compile)")
    print(f"  max |w_factor - w_dense|              : {res['max_abs_weight_diff']:.2e}")
    print(f"  max relative variance difference      : {res['max_rel_variance_diff']:.2e}")
    return res


if __name__ == "__main__":
    main()

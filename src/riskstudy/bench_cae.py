"""Benchmark: IPCA by our alternating least squares against the ``ipca`` package's fit, on the full panel.

``python -m riskstudy.bench_cae [--params params.yaml] [--market us] [--ks 1 3 6] [--out FILE]``

Builds the ``cae`` section's characteristics of one market (all month ends that pass
``cae.max_missing``), then fits restricted IPCA (instruments ``[Z, 1]``) for each K with
:func:`~riskstudy.cae.ipca.ipca_als` and with ``ipca.InstrumentedPCA``
(:func:`~riskstudy.cae.ipca.package_ipca`), same tolerance and iteration cap. Reported per K: both
wall times (the package's first call in the process also compiles its numba kernels; that
compilation is timed apart, on a K = 1 warm-up fit), the total R^2 of each fit and the largest
difference of their fitted returns. The package's plain solves fail on exactly collinear
instruments (China's ``beta`` / ``betasq`` ranks); such a failure is reported, not raised.
"""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Sequence

import numpy as np

from riskstudy.cae.characteristics import add_constant, build_characteristics
from riskstudy.cae.config import CAEConfig
from riskstudy.cae.famafrench_model import market_factors
from riskstudy.cae.ipca import IPCAFit, ipca_als, package_ipca
from riskstudy.cae.refit import complete_periods
from riskstudy.config import load_params
from riskstudy.data.market import load_market
from riskstudy.reporting import write_timings

logger = logging.getLogger(__name__)


def _fitted(fit: IPCAFit, Z: np.ndarray) -> np.ndarray:
    """In-sample fitted returns ``(T, N)``: :math:`[z, 1]'\\Gamma f_t`."""
    return np.einsum("tnl,lk,tk->tn", Z, fit.gamma, fit.factors)


def run(Z: np.ndarray, R: np.ndarray, mask: np.ndarray, *, ks: Sequence[int], config: CAEConfig) -> dict:
    """Time both fits for each K on instruments ``Z (T, N, L)``, returns ``R (T, N)`` and ``mask (T, N)``."""
    Rm = np.where(mask, R, 0.0)
    sst = float((Rm ** 2).sum())
    out: dict = {"n_periods": int(Z.shape[0]), "n_stocks": int(Z.shape[1]), "n_instruments": int(Z.shape[2]),
                 "n_stock_periods": int(mask.sum()), "tol": config.ipca_tol, "max_iter": config.ipca_max_iter, "by_k": {}}
    t0 = time.perf_counter()
    try:
        package_ipca(Z, R, mask, n_factors=1, max_iter=config.ipca_max_iter, tol=config.ipca_tol)
        out["package_first_call_s"] = time.perf_counter() - t0  # numba compilation + one K = 1 fit
    except np.linalg.LinAlgError as err:
        out["package_error"] = f"LinAlgError: {err}"
    for k in ks:
        row: dict = {}
        t0 = time.perf_counter()
        ours = ipca_als(Z, R, mask, n_factors=k, max_iter=config.ipca_max_iter, tol=config.ipca_tol)
        row["als_s"], row["als_iter"] = time.perf_counter() - t0, ours.n_iter
        fit_ours = np.where(mask, _fitted(ours, Z), 0.0)
        row["als_r2_total"] = 1 - float(((Rm - fit_ours) ** 2).sum()) / sst
        if "package_error" not in out:
            t0 = time.perf_counter()
            try:
                pkg = package_ipca(Z, R, mask, n_factors=k, max_iter=config.ipca_max_iter, tol=config.ipca_tol)
            except np.linalg.LinAlgError as err:
                row["package_error"] = f"LinAlgError: {err}"
            else:
                row["package_s"] = time.perf_counter() - t0
                fit_pkg = np.where(mask, _fitted(pkg, Z), 0.0)
                row["package_r2_total"] = 1 - float(((Rm - fit_pkg) ** 2).sum()) / sst
                row["max_abs_fitted_diff"] = float(np.abs(fit_ours - fit_pkg).max())
                row["speedup"] = row["package_s"] / row["als_s"]
        out["by_k"][str(k)] = row
        logger.info("IPCA K=%d: %s", k, {a: round(b, 4) if isinstance(b, float) else b for a, b in row.items()})
    return out


def main(argv: Sequence[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m riskstudy.bench_cae", description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--market", default="us", choices=["us", "cn"])
    parser.add_argument("--ks", type=int, nargs="+", default=[1, 3, 6])
    parser.add_argument("--out", default=None, help="JSON file for the result (e.g. reports/benchmarks/ipca_us.json)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    params = load_params(args.params)
    cfg = params.cae if params.cae is not None else CAEConfig()
    md = load_market(params, args.market)
    ch = build_characteristics(md, frequency=cfg.frequency, factors=market_factors(params, args.market).get("FF3"),
                               market=cfg.market, beta_window=cfg.beta_window, idio_window=cfg.idio_window)
    periods = np.flatnonzero(complete_periods(ch, max_missing=cfg.max_missing) & ch.mask.any(1))
    res = run(add_constant(ch.Z[periods]), ch.R[periods], ch.mask[periods], ks=args.ks, config=cfg)
    res["market"] = args.market
    print(f"IPCA on the full {args.market.upper()} panel: {res['n_periods']} months, {res['n_stock_periods']} stock-months, "
          f"{res['n_instruments']} instruments (with the constant); tol {res['tol']:g}")
    if "package_first_call_s" in res:
        print(f"  ipca package, first call (numba compilation + K=1 fit): {res['package_first_call_s']:.1f} s")
    for k, row in res["by_k"].items():
        pkg = (f"package {row['package_s']:.2f} s (R^2 {row['package_r2_total']:.4f}), ours {row['speedup']:.1f}x faster, "
               f"max |fitted diff| {row['max_abs_fitted_diff']:.1e}" if "package_s" in row
               else row.get("package_error", res.get("package_error", "package not run")))
        print(f"  K={k}: ours {row['als_s']:.2f} s ({row['als_iter']} iterations, R^2 {row['als_r2_total']:.4f}); {pkg}")
    if args.out:
        write_timings(args.out, res)
    return res


if __name__ == "__main__":
    main()

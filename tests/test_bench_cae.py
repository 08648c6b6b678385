"""The IPCA benchmark times both fits and checks they agree (numba JIT disabled: the ``ipca_package`` fixture)."""

from __future__ import annotations

from riskstudy.bench_cae import run
from riskstudy.cae.characteristics import add_constant
from riskstudy.cae.config import CAEConfig
from riskstudy.cae.planted import planted_panel


def test_benchmark_reports_both_fits_and_their_agreement(ipca_package):
    ch, _ = planted_panel(n_periods=40, n_stocks=60, n_chars=4, n_factors=2, kind="linear", member_prob=0.9, seed=3)
    res = run(add_constant(ch.Z), ch.R, ch.mask, ks=[1, 2], config=CAEConfig(ipca_tol=1e-8))
    assert res["n_instruments"] == 5 and set(res["by_k"]) == {"1", "2"} and res["package_first_call_s"] > 0
    for row in res["by_k"].values():
        assert row["als_s"] > 0 and row["package_s"] > 0 and row["speedup"] > 0
        assert abs(row["als_r2_total"] - row["package_r2_total"]) < 1e-6 and row["max_abs_fitted_diff"] < 1e-5
    assert res["by_k"]["2"]["als_r2_total"] >= res["by_k"]["1"]["als_r2_total"] - 1e-12  # nested K

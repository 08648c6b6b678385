"""Tests for riskstudy.bench_drm: synthetic source contract, FLOP model, benchmark smoke run."""

from __future__ import annotations

import numpy as np
import pytest

from riskstudy.bench_drm import SyntheticSource, model_flops, run_benchmark
from riskstudy.config import DRMParams


def test_synthetic_source_honours_the_batch_contract() -> None:
    src = SyntheticSource(n_stocks=12, n_days=30, seq_len=5, horizon=4, seed=0)
    days = np.arange(3, 20)
    batches = list(src.batches(days, 8))
    assert [b.x.shape[0] for b in batches] == [8, 8, 1]
    b = batches[0]
    B, M = b.mask.shape
    assert b.x.shape == (B, M, 5, 5) and b.y.shape == b.y_mask.shape == (B, M, 4)
    assert np.array_equal(b.day_idx.numpy(), days[:8])
    assert np.array_equal(b.mask.numpy(), src.member[days[:8]][:, b.stock_idx.numpy()])
    # labels are strictly future single-day returns: y[b, i, h-1] = r[t_b + h]
    t, i = int(b.day_idx[2]), int(b.stock_idx[1])
    assert b.y[2, 1, 0].item() == pytest.approx(src.returns[t + 1, i])
    assert b.y[2, 1, 3].item() == pytest.approx(src.returns[t + 4, i])
    assert (b.weight[~b.mask] == 0).all() and (b.size[b.mask] > 0).all()


def test_flop_model_scales_with_work() -> None:
    c = DRMParams(n_factors=10)
    base = model_flops(c, members=1000, universe=100)
    assert model_flops(c, members=2000, universe=100) == pytest.approx(2 * base)
    assert model_flops(DRMParams(n_factors=10, gat=False), members=1000, universe=100) < base


def test_run_benchmark_smoke() -> None:
    src = SyntheticSource(n_stocks=20, n_days=16, seed=0)
    res = run_benchmark(src, days=np.arange(16), n_factors=4, batch_days=8)
    assert set(res) == {"batched_stock_days_per_s", "per_day_stock_days_per_s", "speedup", "epoch_seconds", "per_day_gflops",
                        "achieved_gflops", "peak_gflops", "peak_ratio", "peak_rss_mb"}
    assert all(v > 0 for v in res.values())

"""Benchmark of the Deep Risk Model trainer: throughput, achieved GFLOP/s, peak memory.

``python -m riskstudy.bench_drm [--stocks 300 --days 256 --factors 10]`` trains on a synthetic
:class:`SyntheticSource` (planted factors, ``L = 20, F = 5, H = 20``) and prints

1. training throughput (member stock-days per second) of the batched trainer
   (:func:`~riskstudy.nn.drm_train.train_step`, one epoch over all days) and of the per-day
   reference loop (:func:`~riskstudy.nn.drm_train.train_step_per_day`, first batch only);
2. achieved GFLOP/s of the batched step and of the per-day loop, from the analytic count of
   :func:`model_flops` (the textbook dense layer; backward = 2x forward), against this
   machine's fp32 matmul peak measured by :func:`matmul_peak_gflops`;
3. peak resident memory of the process.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from collections.abc import Iterator, Sequence

import numpy as np
import torch

from riskstudy.config import DRMParams
from riskstudy.features.batch import BatchSource, DayBatch
from riskstudy.nn.drm import N_FEATURES, DeepRiskModel
from riskstudy.nn.drm_train import ExposureCarry, train_step, train_step_per_day
from riskstudy.reporting import peak_rss_mb


class SyntheticSource:
    """A :class:`~riskstudy.features.batch.BatchSource` with planted risk factors.

    Features follow independent AR(1) processes (coefficient ``phi``) per stock; the exposure of
    stock ``i`` to true factor ``k`` on day ``t`` is feature ``k`` at the last step of its input
    window, and returns are :math:`r_{s} = B_{s-1} g_s + \\sigma \\varepsilon_s` with
    :math:`g_s \\sim N(0, I)`, so a model that reads the last input step explains most of the
    label variance. Membership is i.i.d. per (day, stock) with probability ``member_prob``;
    sizes are log-normal per stock.

    Parameters
    ----------
    n_stocks, n_days, seq_len, n_features, horizon : int
        N, usable days T (panel rows ``0..T-1``), L, F, H.
    n_true_factors : int
        Planted factors (<= ``n_features``).
    noise : float
        Idiosyncratic volatility sigma.
    phi : float
        AR(1) persistence of the features.
    member_prob : float
        Daily membership probability.
    seed : int
        Generator seed.
    """

    def __init__(self, *, n_stocks: int = 300, n_days: int = 256, seq_len: int = 20, n_features: int = 5,
                 horizon: int = 20, n_true_factors: int = 3, noise: float = 1.0, phi: float = 0.98,
                 member_prob: float = 0.95, seed: int = 0) -> None:
        if not 1 <= n_true_factors <= n_features:
            raise ValueError(f"SyntheticSource.n_true_factors must lie in [1, n_features], got {n_true_factors}")
        rng = np.random.default_rng(seed)
        total = n_days + horizon + seq_len
        eps = rng.standard_normal((total, n_stocks, n_features)).astype(np.float32)
        feats = np.empty_like(eps)
        feats[0] = eps[0]
        for s in range(1, total):
            feats[s] = phi * feats[s - 1] + math.sqrt(1 - phi**2) * eps[s]
        self.windows = np.lib.stride_tricks.sliding_window_view(feats, seq_len, axis=0)  # (T', N, F, L)
        expo = feats[seq_len - 1:, :, :n_true_factors]  # (T'', N, k): exposure on day t
        g = rng.standard_normal((len(expo), n_true_factors)).astype(np.float32)
        r = np.zeros((len(expo), n_stocks), dtype=np.float32)
        r[1:] = np.einsum("snk,sk->sn", expo[:-1], g[1:]) + noise * rng.standard_normal((len(expo) - 1, n_stocks))
        self.returns = r  # r[s] = return on panel day s
        self.member = rng.random((n_days, n_stocks)) < member_prob
        self.size = np.exp(rng.standard_normal(n_stocks)).astype(np.float32)
        self.n_days, self.horizon, self.n_instruments = n_days, horizon, n_stocks

    def batches(self, day_idx: np.ndarray, batch_days: int) -> Iterator[DayBatch]:
        """Yield chunks of ``batch_days`` of ``day_idx`` over the union of their members."""
        day_idx = np.asarray(day_idx, dtype=np.int64)
        for start in range(0, len(day_idx), batch_days):
            days = day_idx[start:start + batch_days]
            mask = self.member[days]
            cols = np.flatnonzero(mask.any(0))
            mask = mask[:, cols]
            x = self.windows[days][:, cols].transpose(0, 1, 3, 2)  # (B, M, L, F)
            y = np.stack([self.returns[days + h][:, cols] for h in range(1, self.horizon + 1)], axis=-1)
            size = np.where(mask, self.size[cols], 0.0).astype(np.float32)
            w = np.sqrt(size)
            cap = np.array([np.quantile(wb[mb], 0.95) if mb.any() else 0.0 for wb, mb in zip(w, mask)])
            yield DayBatch(
                x=torch.from_numpy(np.ascontiguousarray(x)), y=torch.from_numpy(y),
                y_mask=torch.from_numpy(np.broadcast_to(mask[..., None], y.shape).copy()),
                mask=torch.from_numpy(mask), weight=torch.from_numpy(np.minimum(w, cap[:, None]).astype(np.float32)),
                size=torch.from_numpy(size), stock_idx=torch.from_numpy(cols), day_idx=torch.from_numpy(days))


def model_flops(config: DRMParams, *, members: int, universe: int, seq_len: int = 20, label_horizons: int = 20,
                n_features: int = N_FEATURES) -> float:
    """Analytic forward FLOPs of one training step (multiply-add = 2 FLOPs).

    Parameters
    ----------
    config : DRMParams
    members : int
        Member (day, stock) pairs in the step.
    universe : int
        Mean members per day (M of the attention).
    seq_len : int
        L.
    label_horizons : int
        Label horizons of the batches, used when ``config.horizon`` is ``None`` (all of them).
    n_features : int
        P.

    Returns
    -------
    float
        Forward FLOPs: GRU heads (gates), attention pooling and output maps, GAT (``W x``,
        scores, ~8 elementwise FLOPs per logit for add/LeakyReLU/softmax/dropout, aggregation),
        and the WLS regressions (normal equations + solve) and penalty of the loss.
    """
    H = config.horizon if config.horizon is not None else label_horizons
    P, Hs, K, L, M = n_features, config.hidden_size, config.n_factors, seq_len, universe
    gru = sum(2 * 3 * Hs * ((P if layer == 0 else Hs) + Hs) + 12 * Hs for layer in range(config.num_layers))
    head = L * gru + L * (2 * Hs * Hs + 2 * Hs) + 2 * L * Hs + 2 * 2 * Hs * (K // 2)
    gat = L * (2 * P * P + 4 * P + 8 * M + 2 * M * P + P) if config.gat else 0
    days = members / max(M, 1)
    loss = days * (H * (2 * M * (K + 1) * (K + 3) + 2 * (K + 1) ** 3 // 3) + 2 * M * K * K + K**3)
    return members * (2 * head + gat) + loss


def matmul_peak_gflops(*, n: int = 2048, reps: int = 10) -> float:
    """Measured fp32 ``torch.matmul`` throughput (GFLOP/s) of an ``n x n`` product, best of ``reps``."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = math.inf
    for _ in range(reps):
        t = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best / 1e9


def _members(batches: Sequence[DayBatch]) -> int:
    return int(sum(int(b.mask.sum()) for b in batches))


def run_benchmark(source: BatchSource | None = None, *, days: np.ndarray | None = None, n_factors: int = 10,
                  batch_days: int = 64, gat: bool = True, seed: int = 0) -> dict[str, float]:
    """Time the batched and per-day trainers and estimate FLOP efficiency.

    Parameters
    ----------
    source : BatchSource, optional
        Default: ``SyntheticSource()`` (300 stocks, 256 days).
    days : numpy.ndarray of int, optional
        Training days; default all days of the synthetic source.
    n_factors, batch_days, gat, seed : DRMParams fields.

    Returns
    -------
    dict
        ``batched_stock_days_per_s, per_day_stock_days_per_s, speedup, epoch_seconds,
        per_day_gflops, achieved_gflops, peak_gflops, peak_ratio, peak_rss_mb``.
        ``per_day_gflops`` (useful FLOP/s of the per-day loop) shows how far a single day of
        ``M`` stocks already keeps the device busy: batching can only win the gap between it
        and ``achieved_gflops``.
    """
    torch.set_num_threads(os.cpu_count() or 1)
    if source is None:
        source = SyntheticSource(seed=seed)
        days = np.arange(source.n_days)
    if days is None:
        raise ValueError("run_benchmark: pass `days` together with a custom `source`")
    config = DRMParams(n_factors=n_factors, batch_days=batch_days, gat=gat, gat_chunk_days=1, seed=seed, device="cpu")
    batches = list(source.batches(days, batch_days))
    torch.manual_seed(seed)
    model = DeepRiskModel(config).train()
    opt = torch.optim.Adam(model.parameters(), lr=config.lr)
    train_step(model, opt, batches[0], ExposureCarry(n_factors=n_factors, device=torch.device("cpu")))  # warm-up

    carry = ExposureCarry(n_factors=n_factors, device=torch.device("cpu"))
    t = time.perf_counter()
    for b in batches:
        train_step(model, opt, b, carry)
    epoch_s = time.perf_counter() - t
    members = _members(batches)

    carry = ExposureCarry(n_factors=n_factors, device=torch.device("cpu"))
    t = time.perf_counter()
    train_step_per_day(model, opt, batches[0], carry)
    per_day_s = time.perf_counter() - t
    members_first = _members(batches[:1])

    universe = members / len(days)
    flops = 3 * model_flops(config, members=members, universe=round(universe))
    flops_first = 3 * model_flops(config, members=members_first, universe=round(universe))
    peak = matmul_peak_gflops()
    achieved = flops / epoch_s / 1e9
    return {
        "batched_stock_days_per_s": members / epoch_s,
        "per_day_stock_days_per_s": members_first / per_day_s,
        "speedup": (members / epoch_s) / (members_first / per_day_s),
        "epoch_seconds": epoch_s,
        "per_day_gflops": flops_first / per_day_s / 1e9,
        "achieved_gflops": achieved,
        "peak_gflops": peak,
        "peak_ratio": achieved / peak,
        "peak_rss_mb": peak_rss_mb(),
    }


def main(argv: Sequence[str] | None = None) -> dict[str, float]:
    """CLI: synthetic benchmark; prints one JSON object."""
    p = argparse.ArgumentParser(prog="python -m riskstudy.bench_drm", description=__doc__.split("\n")[0])
    p.add_argument("--stocks", type=int, default=300)
    p.add_argument("--days", type=int, default=256)
    p.add_argument("--factors", type=int, default=10)
    p.add_argument("--batch-days", type=int, default=64)
    p.add_argument("--no-gat", action="store_true")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    src = SyntheticSource(n_stocks=a.stocks, n_days=a.days, seed=a.seed)
    res = run_benchmark(src, days=np.arange(a.days), n_factors=a.factors, batch_days=a.batch_days,
                        gat=not a.no_gat, seed=a.seed)
    print(json.dumps({k: round(v, 3) for k, v in res.items()}, indent=2))
    return res


if __name__ == "__main__":
    main()

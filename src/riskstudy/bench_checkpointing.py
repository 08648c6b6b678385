"""Benchmark of gradient checkpointing and of the TFT encoder at the DRM's paper-scale batch (issue 14).

``python -m riskstudy.bench_checkpointing [--days 64 --stocks 300 --factors 10 --reps 3]`` prints one JSON object:

1. one DRM training step (the study's loss, :func:`~riskstudy.nn.drm_train.batch_losses`, backward, Adam)
   on a synthetic batch of ``days x stocks`` (:class:`~riskstudy.bench_drm.SyntheticSource`), with
   and without gradient checkpointing of the GAT and both factor heads' encoders
   (:class:`~riskstudy.nn.checkpointing.Checkpointed`): step time (median of ``reps``), the bytes
   autograd saves for backward (:func:`~riskstudy.nn.checkpointing.saved_activation_bytes`), the
   largest gradient difference between the two (the same seed and initial weights), and on CUDA
   the peak allocated memory of the step;
2. forward + backward time of the GRU and the TFT encoder (:class:`~riskstudy.nn.tft.TFTEncoder`)
   on the same batch's member sequences (``members x 20 x 5``).

The wrapping is done here, from outside the network: the DRM's own ``checkpointing`` and
``encoder: tft`` config fields come with the DRM rerun of issue 11 (every DRM stage depends on the
config module), so the study's stages do not use either yet.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Sequence

import numpy as np
import torch

from riskstudy.bench_drm import SyntheticSource
from riskstudy.config import DRMParams
from riskstudy.features.batch import DayBatch
from riskstudy.nn.checkpointing import Checkpointed, saved_activation_bytes
from riskstudy.nn.drm import DeepRiskModel
from riskstudy.nn.drm_train import ExposureCarry, batch_losses
from riskstudy.nn.encoders import make_encoder
from riskstudy.nn.tft import TFTEncoder


def checkpoint_model(model: DeepRiskModel) -> DeepRiskModel:
    """Wrap the GAT and both factor heads' encoders in :class:`Checkpointed` (in place; returns ``model``)."""
    if model.gat is not None:
        model.gat = Checkpointed(model.gat)
    for head in (model.head_1, model.head_2):
        head.encoder = Checkpointed(head.encoder)
    return model


def _loss(model: DeepRiskModel, batch: DayBatch, n_factors: int, device: torch.device) -> torch.Tensor:
    return batch_losses(model, batch, ExposureCarry(n_factors=n_factors, device=device)).mean("loss")


def _step_seconds(model: DeepRiskModel, batch: DayBatch, *, n_factors: int, device: torch.device, reps: int) -> float:
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    times = []
    for _ in range(reps + 1):  # the first is a warm-up
        if device.type == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        _loss(model, batch, n_factors, device).backward()
        opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    return statistics.median(times[1:])


def _grads(model: DeepRiskModel, batch: DayBatch, *, n_factors: int, device: torch.device, seed: int) -> list[torch.Tensor]:
    model.zero_grad(set_to_none=True)
    torch.manual_seed(seed)  # the same dropout masks in both runs
    _loss(model, batch, n_factors, device).backward()
    return [p.grad.detach().clone() for p in model.parameters() if p.grad is not None]


def _cuda_peak(model: DeepRiskModel, batch: DayBatch, *, n_factors: int, device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    model.zero_grad(set_to_none=True)
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats(device)
    base = torch.cuda.memory_allocated(device)
    _loss(model, batch, n_factors, device).backward()
    torch.cuda.synchronize()
    return (torch.cuda.max_memory_allocated(device) - base) / 2**20


def _encoder_seconds(encoder: torch.nn.Module, x: torch.Tensor, *, reps: int) -> float:
    times = []
    for _ in range(reps + 1):
        if x.device.type == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        encoder.zero_grad(set_to_none=True)
        encoder(x).square().mean().backward()
        if x.device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    return statistics.median(times[1:])


def run_benchmark(*, days: int = 64, stocks: int = 300, n_factors: int = 10, hidden_size: int = 32, reps: int = 3,
                  seed: int = 0, device: str = "auto") -> dict[str, float | None]:
    """Sections 1-2 of the module docstring; returns the printed dict."""
    dev = torch.device("cuda" if device == "auto" and torch.cuda.is_available() else ("cpu" if device == "auto" else device))
    if dev.type == "cpu":
        torch.set_num_threads(os.cpu_count() or 1)
    source = SyntheticSource(n_stocks=stocks, n_days=days, seed=seed)
    batch = next(iter(source.batches(np.arange(days), days))).to(dev)
    config = DRMParams(n_factors=n_factors, hidden_size=hidden_size, batch_days=days, seed=seed, device=dev.type)
    torch.manual_seed(seed)
    plain = DeepRiskModel(config).to(dev).train()
    state = {k: v.clone() for k, v in plain.state_dict().items()}
    torch.manual_seed(seed)
    ckpt = checkpoint_model(DeepRiskModel(config)).to(dev).train()
    ckpt.load_state_dict(_wrapped_keys(state, ckpt))
    out: dict[str, float | None] = {"days": days, "stocks": stocks, "members": int(batch.mask.sum()), "device": dev.type}
    for name, model in (("plain", plain), ("checkpointed", ckpt)):
        out[f"{name}_saved_mb"] = saved_activation_bytes(lambda m=model: _loss(m, batch, n_factors, dev)) / 2**20
        out[f"{name}_cuda_peak_mb"] = _cuda_peak(model, batch, n_factors=n_factors, device=dev)
        out[f"{name}_step_s"] = _step_seconds(model, batch, n_factors=n_factors, device=dev, reps=reps)
    out["saved_reduction"] = 1 - out["checkpointed_saved_mb"] / out["plain_saved_mb"]
    # identical gradients from identical weights (the step timings above moved both models: reload)
    plain.load_state_dict(state)
    ckpt.load_state_dict(_wrapped_keys(state, ckpt))
    g1 = _grads(plain, batch, n_factors=n_factors, device=dev, seed=seed)
    g2 = _grads(ckpt, batch, n_factors=n_factors, device=dev, seed=seed)
    out["max_grad_diff"] = max(float((a - b).abs().max()) for a, b in zip(g1, g2))
    seqs = batch.x[batch.mask]  # (members, L, P)
    torch.manual_seed(seed)
    gru = make_encoder("gru", n_features=seqs.shape[-1], hidden_size=hidden_size, num_layers=config.num_layers,
                       seq_len=seqs.shape[1]).to(dev).train()
    tft = TFTEncoder(n_features=seqs.shape[-1], hidden_size=hidden_size, num_layers=1, n_heads=4, dropout=0.1).to(dev).train()
    out["gru_encoder_s"] = _encoder_seconds(gru, seqs, reps=reps)
    out["tft_encoder_s"] = _encoder_seconds(tft, seqs, reps=reps)
    out["tft_over_gru"] = out["tft_encoder_s"] / out["gru_encoder_s"]
    return out


def _wrapped_keys(state: dict[str, torch.Tensor], wrapped: torch.nn.Module) -> dict[str, torch.Tensor]:
    """``state`` of the plain network renamed to the checkpointed one's keys (``gat.`` -> ``gat.module.``, ...)."""
    target = list(wrapped.state_dict())
    out = {}
    for k, v in state.items():
        cands = [t for t in target if t.replace(".module.", ".") == k or t.replace("gat.module.", "gat.") == k]
        if len(cands) != 1:
            raise KeyError(f"no unique checkpointed key for {k!r}: {cands}")
        out[cands[0]] = v
    return out


def main(argv: Sequence[str] | None = None) -> dict:
    p = argparse.ArgumentParser(prog="python -m riskstudy.bench_checkpointing", description=__doc__.split("\n")[0])
    p.add_argument("--days", type=int, default=64)
    p.add_argument("--stocks", type=int, default=300)
    p.add_argument("--factors", type=int, default=10)
    p.add_argument("--hidden", type=int, default=32)  # the default profile's GRU width
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--device", default="auto")
    p.add_argument("--out", help="also write the JSON here")
    a = p.parse_args(argv)
    res = run_benchmark(days=a.days, stocks=a.stocks, n_factors=a.factors, hidden_size=a.hidden, reps=a.reps, device=a.device)
    text = json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in res.items()}, indent=2)
    print(text)
    if a.out:
        from pathlib import Path

        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        Path(a.out).write_text(text + "\n")
    return res


if __name__ == "__main__":
    main()

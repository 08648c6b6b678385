"""The batch contract between the Deep Risk Model inputs and its trainer.

A :class:`DayBatch` holds ``B`` consecutive trading days over ``M`` stocks, the
union of the universe members over those days (padding + masks), so that one
forward/backward pass covers all ``B`` days. A :class:`BatchSource` yields such
batches in chronological order.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, fields
from typing import Protocol

import numpy as np
import torch


@dataclass
class DayBatch:
    """``B`` consecutive trading days of DRM inputs and labels.

    Attributes
    ----------
    x : torch.Tensor, float32, shape (B, M, L, F)
        Normalised input sequences, ``L`` time steps (oldest first), ``F`` features.
    y : torch.Tensor, float32, shape (B, M, H)
        ``y[b, i, h-1]`` = simple return of stock ``i`` on day ``t_b + h`` (the
        single-day return ``h`` days ahead, ``h = 1..H``); 0 where missing.
    y_mask : torch.Tensor, bool, shape (B, M, H)
        Label available.
    mask : torch.Tensor, bool, shape (B, M)
        Stock ``i`` is in the universe on day ``t_b`` (inputs valid).
    weight : torch.Tensor, float32, shape (B, M)
        Regression weights ``sqrt(size)`` clipped at the day's 95th percentile; 0 off-mask.
    size : torch.Tensor, float32, shape (B, M)
        Size proxy (> 0 on mask) for size-weighted normalisation.
    stock_idx : torch.Tensor, long, shape (M,)
        Panel column ids; the same column is the same stock on all ``B`` days.
    day_idx : torch.Tensor, long, shape (B,)
        Panel row ids, increasing.
    """

    x: torch.Tensor
    y: torch.Tensor
    y_mask: torch.Tensor
    mask: torch.Tensor
    weight: torch.Tensor
    size: torch.Tensor
    stock_idx: torch.Tensor
    day_idx: torch.Tensor

    def to(self, device: torch.device | str) -> DayBatch:
        """Copy of the batch with every tensor on ``device`` (no copy when already there)."""
        return DayBatch(**{f.name: getattr(self, f.name).to(device) for f in fields(self)})


class BatchSource(Protocol):
    """Anything that yields :class:`DayBatch` chunks of given panel rows."""

    def batches(self, day_idx: np.ndarray, batch_days: int) -> Iterator[DayBatch]:
        """Yield consecutive chunks of ``batch_days`` of ``day_idx`` (increasing panel rows), in order."""
        ...

"""Shared fixtures for the Deep Risk Model tests: random :class:`DayBatch` builders."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch

from riskstudy.features.batch import DayBatch


def random_batch(
    *,
    n_days: int = 4,
    n_stocks: int = 12,
    horizon: int = 3,
    seq_len: int = 6,
    n_features: int = 5,
    member_prob: float = 0.8,
    first_day: int = 0,
    stock_idx: np.ndarray | None = None,
    dtype: torch.dtype = torch.float64,
    seed: int = 0,
) -> DayBatch:
    """A random :class:`DayBatch` of consecutive days with random membership and labels."""
    g = torch.Generator().manual_seed(seed)
    mask = torch.rand(n_days, n_stocks, generator=g) < member_prob
    mask[:, 0] = True  # every day has members
    size = torch.where(mask, torch.rand(n_days, n_stocks, generator=g, dtype=dtype) + 0.1, 0.0)
    y_mask = (torch.rand(n_days, n_stocks, horizon, generator=g) < 0.9) & mask.unsqueeze(-1)
    y = torch.where(y_mask, 0.02 * torch.randn(n_days, n_stocks, horizon, generator=g, dtype=dtype), 0.0)
    cols = np.arange(n_stocks) if stock_idx is None else stock_idx
    return DayBatch(
        x=torch.randn(n_days, n_stocks, seq_len, n_features, generator=g, dtype=dtype),
        y=y, y_mask=y_mask, mask=mask, weight=size.sqrt(), size=size,
        stock_idx=torch.as_tensor(cols, dtype=torch.long),
        day_idx=torch.arange(first_day, first_day + n_days, dtype=torch.long))


@pytest.fixture
def make_batch() -> Callable[..., DayBatch]:
    """Factory fixture for :func:`random_batch`."""
    return random_batch

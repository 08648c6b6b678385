"""Deep Risk Model inputs and labels, computed lazily per batch of days.

Inputs (the official recipe): for each price field ``f`` in open, high, low,
close and each lag ``d`` in ``lags`` (20 lags, oldest first)::

    x[t, i, l, f] = log( f[t - d_l, i] / MA60(close)[t, i] )        f in {open, high, low, close}
    x[t, i, l, 4] = log( volume[t - d_l, i] / MA60(volume)[t, i] )

i.e. a 20-step x 5-feature sequence per stock and day that uses data up to and
including day ``t`` only. Each of the ``20 * 5`` features is normalised robustly
with statistics fitted on the training window only::

    z = clip((x - median) / (1.4826 * MAD), -clip, clip),   missing -> 0

Labels are strictly future single-day returns: ``y[t, i, h-1] = ret[t + h, i]``
for ``h = 1..H`` (``ret[t]`` is the close-to-close return from ``t-1`` to ``t``).

Nothing of shape ``days x stocks x 100`` is ever materialised for the whole
panel: :meth:`DRMDataset.batch` gathers the rows a batch needs from the
``(T, N)`` log-field arrays.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator, Sequence

import numpy as np
import pandas as pd
import torch

from riskstudy.data.panel import PRICE_FIELDS, Panel
from riskstudy.features.batch import DayBatch
from riskstudy.features.weights import regression_weights
from riskstudy.features.windows import trailing_mean

log = logging.getLogger(__name__)

MAD_SCALE = 1.4826


class RobustNormalizer:
    """Per-feature median/MAD scaler, fitted on training data only.

    Attributes
    ----------
    median_ : ndarray (L, F)
    scale_ : ndarray (L, F)
        ``1.4826 * MAD`` (floored at a tiny positive number).
    """

    def __init__(self, *, clip: float = 3.0) -> None:
        self.clip = clip

    def fit(self, x: np.ndarray, mask: np.ndarray) -> "RobustNormalizer":
        """Fit on ``x`` of shape ``(D, N, L, F)`` over the rows where ``mask (D, N)`` is true."""
        rows = x[mask]  # (n, L, F)
        self.median_ = np.nanmedian(rows, axis=0)
        mad = np.nanmedian(np.abs(rows - self.median_), axis=0)
        self.scale_ = np.maximum(MAD_SCALE * mad, 1e-8)
        return self

    def transform(self, x: np.ndarray) -> np.ndarray:
        z = np.clip((x - self.median_) / self.scale_, -self.clip, self.clip)
        return np.nan_to_num(z, nan=0.0).astype(np.float32)


class DRMDataset:
    """Lazy batches of Deep Risk Model inputs/labels over a :class:`Panel`.

    Parameters
    ----------
    panel : Panel
    lags : sequence of int
        Lags in trading days, oldest first (e.g. ``240, 200, ..., 10``).
    ma_window : int
        Window of the moving averages in the denominators (60).
    horizon : int
        Number of label horizons ``H``.
    size_window : int
        Trailing window of the mean dollar volume used as size.
    clip : float
        Clip of the robust z-scores.
    norm_days : array of int
        Panel rows (training window only) on which the normaliser is fitted.

    Attributes
    ----------
    normalizer_ : RobustNormalizer
    valid_ : ndarray of bool (T, N)
        Universe member with a full input history on day ``t``.
    """

    def __init__(
        self,
        panel: Panel,
        *,
        lags: Sequence[int],
        ma_window: int,
        horizon: int,
        size_window: int,
        clip: float,
        norm_days: np.ndarray,
    ) -> None:
        self.panel = panel
        self.lags = np.asarray(sorted(lags, reverse=True), dtype=np.int64)
        self.horizon = horizon
        self.ma_window, self.size_window, self.clip = ma_window, size_window, clip
        self._fingerprint: str | None = None
        with np.errstate(divide="ignore", invalid="ignore"):
            logf = [np.log(panel[f]) for f in PRICE_FIELDS]
            close_ma = trailing_mean(panel["close"], ma_window)
            vol = np.where(panel["volume"] > 0, panel["volume"], np.nan)
            vol_ma = trailing_mean(vol, ma_window, min_periods=ma_window // 2)
            logf[-1] = np.log(vol)
            self._logf = np.stack(logf).astype(np.float32)  # (5, T, N)
            self._logden = np.stack([np.log(close_ma)] * 4 + [np.log(vol_ma)]).astype(np.float32)  # (5, T, N)
        self.size = trailing_mean(panel["dollar_volume"], size_window, min_periods=1)
        first_ok = np.arange(panel.shape[0]) >= self.lags.max()
        self.valid_ = panel.member & np.isfinite(close_ma) & np.isfinite(self.size) & first_ok[:, None]
        self.normalizer_ = RobustNormalizer(clip=clip)
        norm_days = np.asarray(norm_days)
        norm_days = norm_days[self.valid_[norm_days].any(1)]
        if len(norm_days) == 0:
            raise ValueError("no valid day to fit the feature normaliser on (training window too short?)")
        raw = self.raw_features(norm_days, np.arange(panel.shape[1]))
        self.normalizer_.fit(raw, self.valid_[norm_days])
        log.info("DRM features: %d lags x 5 fields, normaliser fitted on %d training days", len(self.lags), len(norm_days))

    @property
    def n_instruments(self) -> int:
        return self.panel.shape[1]

    def members_per_day(self, days: np.ndarray) -> np.ndarray:
        """Stocks in a batch of each of ``days``: valid members, shape ``(D,)``."""
        return self.valid_[np.asarray(days, dtype=np.int64)].sum(1)

    def fingerprint(self) -> str:
        """Hash of everything :meth:`batch` reads: the panel's calendar, instruments, log fields and their
        moving-average denominators, returns, sizes and validity, the fitted normaliser and the feature
        settings (``lags, horizon, ma_window, size_window, clip``). Computed once (~0.1 s per 100 MB)."""
        if self._fingerprint is None:
            h = hashlib.sha256()
            settings = (f"lags={self.lags.tolist()} horizon={self.horizon} ma_window={self.ma_window} "
                        f"size_window={self.size_window} clip={self.clip}")
            arrays = (self.panel.dates.values.astype("datetime64[ns]").astype(np.int64),
                      np.asarray(self.panel.instruments, dtype=str), self._logf, self._logden,
                      np.asarray(self.panel["ret"]), self.size, self.valid_,
                      self.normalizer_.median_, self.normalizer_.scale_, np.asarray([self.normalizer_.clip]))
            h.update(settings.encode())
            for a in arrays:
                a = np.ascontiguousarray(a)
                h.update(f"{a.dtype.str}{a.shape}".encode())
                h.update(a.data)
            self._fingerprint = h.hexdigest()[:20]
        return self._fingerprint

    def raw_features(self, days: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Unnormalised inputs ``(D, M, L, 5)`` for panel rows ``days`` and columns ``cols``."""
        rows = days[:, None] - self.lags[None, :]  # (D, L)
        num = self._logf[:, rows[:, :, None], cols[None, None, :]]  # (5, D, L, M)
        den = self._logden[:, days[:, None], cols[None, :]]  # (5, D, M)
        x = num - den[:, :, None, :]
        return x.transpose(1, 3, 2, 0)  # (D, M, L, 5)

    def labels(self, days: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """``y[d, m, h-1] = ret[days[d] + h, cols[m]]`` (NaN beyond the panel), shape ``(D, M, H)``."""
        ret = self.panel["ret"]
        T = ret.shape[0]
        rows = days[:, None] + np.arange(1, self.horizon + 1)[None, :]  # (D, H)
        y = ret[np.minimum(rows, T - 1)][:, :, cols]  # (D, H, M)
        y[rows >= T] = np.nan
        return y.transpose(0, 2, 1)

    def batch(self, days: np.ndarray) -> DayBatch:
        """One :class:`DayBatch` for panel rows ``days`` over the union of their valid stocks."""
        days = np.asarray(days, dtype=np.int64)
        cols = np.flatnonzero(self.valid_[days].any(0))
        mask = self.valid_[days][:, cols]
        x = self.normalizer_.transform(self.raw_features(days, cols))
        x[~mask] = 0.0
        y = self.labels(days, cols)
        y_mask = np.isfinite(y) & mask[:, :, None]
        size = np.where(mask, self.size[days][:, cols], 0.0)
        weight = regression_weights(size, mask)
        return DayBatch(
            x=torch.from_numpy(x),
            y=torch.from_numpy(np.nan_to_num(y, nan=0.0).astype(np.float32)),
            y_mask=torch.from_numpy(y_mask),
            mask=torch.from_numpy(mask),
            weight=torch.from_numpy(weight.astype(np.float32)),
            size=torch.from_numpy(np.nan_to_num(size).astype(np.float32)),
            stock_idx=torch.from_numpy(cols),
            day_idx=torch.from_numpy(days),
        )

    def batches(self, day_idx: np.ndarray, batch_days: int) -> Iterator[DayBatch]:
        """Consecutive chunks of ``batch_days`` rows of ``day_idx`` (in the given order)."""
        day_idx = np.asarray(day_idx, dtype=np.int64)
        for s in range(0, len(day_idx), batch_days):
            yield self.batch(day_idx[s : s + batch_days])


def split_rows(
    dates: pd.DatetimeIndex, start, end, *, valid: np.ndarray | None = None, purge: int = 0
) -> np.ndarray:
    """Panel rows with ``start <= date <= end``.

    ``valid`` keeps only rows with at least one valid stock; ``purge = H`` drops the
    rows whose ``H``-day labels would reach past ``end`` (no label crosses a split
    boundary, so validation returns never train the model).
    """
    inside = (dates >= pd.Timestamp(start)) & (dates <= pd.Timestamp(end))
    rows = np.flatnonzero(inside)
    if purge and len(rows):
        rows = rows[rows + purge <= rows.max()]
    if valid is not None:
        rows = rows[valid[rows].any(1)]
    return rows

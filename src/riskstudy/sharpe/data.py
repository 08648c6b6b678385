r"""The Sharpe section's inputs: a 50-stock daily panel, its 63-day input windows and future returns.

:func:`build_inputs` reads the market from the raw data with the section's own dates (the US from
2001; the study's prepared panel starts in 2008), picks the universe
(:func:`riskstudy.sharpe.universe.select_universe`) and keeps per day ``t`` and stock ``i`` the
log levels

.. math:: \ell_{t,i} = (\ln O, \ln H, \ln L, \ln C, \ln C^{raw}, \ln V)_{t,i}

(``O, H, L, C`` split- and dividend-adjusted, :math:`C^{raw}` the unadjusted close, ``V`` the
split-adjusted volume: the paper's open, high, low, close, adjusted close and volume).

A decision at the close of ``t`` sees the window :math:`\tau = t - L + 1 .. t` (``L = seq_len``)
through scale-free features (:meth:`SharpeInputs.windows`): the four adjusted prices relative to
the adjusted close of ``t``, the raw close relative to the raw close of ``t``, and log volume
relative to its window mean; each feature is then standardised with a mean and standard deviation
estimated on training decision days only (:func:`fit_normaliser`). A stock enters a decision when its
close of ``t`` and its whole window are present (``mask``). The returns it is judged on are
``returns[t + 1 .. t + hold]`` only (:meth:`SharpeInputs.future`).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from riskstudy.data.panel import Panel
from riskstudy.sharpe.universe import select_universe

log = logging.getLogger(__name__)

FEATURES: tuple[str, ...] = ("open", "high", "low", "close", "raw_close", "volume")
_ANCHORS = (3, 3, 3, 3, 4)  # the price features' anchor column: adjusted close, adjusted close x3, raw close


@dataclass
class SharpeInputs:
    """The section's panel of ``T`` days and ``N`` stocks.

    Attributes
    ----------
    market : str
    dates : DatetimeIndex (T,)
    instruments : Index (N,)
        Ordered by the universe rule's ranking statistic.
    levels : ndarray (T, N, 6)
        Log levels of :data:`FEATURES` (NaN where missing).
    returns : ndarray (T, N)
        Simple close-to-close returns (NaN where missing).
    benchmark : ndarray (T,)
        The index proxy's daily return.
    seq_len : int
    mean_, std_ : ndarray (6,)
        Normalisation statistics fitted on training days (:func:`fit_normaliser`); zeros and ones
        until fitted.
    rule : str
        The universe rule that chose ``instruments``.
    """

    market: str
    dates: pd.DatetimeIndex
    instruments: pd.Index
    levels: np.ndarray
    returns: np.ndarray
    benchmark: np.ndarray
    seq_len: int
    rule: str
    mean_: np.ndarray = field(default_factory=lambda: np.zeros(len(FEATURES)))
    std_: np.ndarray = field(default_factory=lambda: np.ones(len(FEATURES)))

    @property
    def shape(self) -> tuple[int, int]:
        return self.returns.shape

    def row(self, day: str | pd.Timestamp, *, side: str = "left") -> int:
        """Row of the first trading day on or after ``day`` (``side="right"``: the first after it)."""
        return int(np.searchsorted(self.dates, pd.Timestamp(day), side=side))

    def raw_windows(self, days: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Un-normalised features ``(B, N, L, 6)`` and the mask ``(B, N)`` of decision rows ``days``."""
        days = np.asarray(days, dtype=int)
        if days.min() < self.seq_len - 1:
            raise ValueError(f"decision rows need {self.seq_len - 1} earlier rows, got row {days.min()}")
        idx = days[:, None] + np.arange(-self.seq_len + 1, 1)  # (B, L)
        x = self.levels[idx].transpose(0, 2, 1, 3).copy()  # (B, N, L, 6)
        last = x[:, :, -1:, :]
        for j, a in enumerate(_ANCHORS):
            x[..., j] -= last[..., a]
        vol = x[..., 5]
        ok = np.isfinite(vol)
        x[..., 5] = vol - np.where(ok, vol, 0.0).sum(axis=2, keepdims=True) / np.maximum(ok.sum(axis=2, keepdims=True), 1)
        mask = np.isfinite(x).all(axis=(2, 3))
        return x, mask

    def windows(self, days: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Normalised features ``(B, N, L, 6)`` (0 where masked out) and the mask ``(B, N)``."""
        x, mask = self.raw_windows(days)
        x = (x - self.mean_) / self.std_
        return np.where(mask[:, :, None, None], x, 0.0).astype(np.float32), mask

    def future(self, days: np.ndarray, hold: int) -> np.ndarray:
        """Returns ``(B, hold, N)`` of rows ``t + 1 .. t + hold`` for each decision row ``t`` (NaN past the end)."""
        days = np.asarray(days, dtype=int)
        idx = days[:, None] + np.arange(1, hold + 1)
        r = np.full((len(days), hold, self.shape[1]), np.nan)
        ok = idx < self.shape[0]
        r[ok] = self.returns[idx[ok]]
        return r

    def fingerprint(self) -> str:
        """Hash of dates, instruments, levels and returns (the inputs part of a run identity)."""
        h = hashlib.sha256()
        for a in (self.dates.asi8, np.asarray(self.instruments, dtype=str).astype("U"), self.levels, self.returns,
                  self.mean_, self.std_):
            h.update(np.ascontiguousarray(a).tobytes())
        return h.hexdigest()[:20]

    def save(self, path: str | Path) -> None:
        """One ``.npz`` file (the stage's output)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(path, market=self.market, dates=self.dates.asi8, instruments=np.asarray(self.instruments, dtype=str),
                            levels=self.levels, returns=self.returns, benchmark=self.benchmark, seq_len=self.seq_len,
                            rule=self.rule, mean_=self.mean_, std_=self.std_)

    @classmethod
    def load(cls, path: str | Path) -> "SharpeInputs":
        z = np.load(path, allow_pickle=False)
        return cls(market=str(z["market"]), dates=pd.DatetimeIndex(z["dates"]), instruments=pd.Index(z["instruments"]),
                   levels=z["levels"], returns=z["returns"], benchmark=z["benchmark"], seq_len=int(z["seq_len"]),
                   rule=str(z["rule"]), mean_=z["mean_"], std_=z["std_"])


@dataclass(frozen=True)
class Rows:
    """Decision rows of the three windows (module docstring of :func:`split_rows`)."""

    train: np.ndarray
    valid: np.ndarray
    test_start: int  # the decision row whose holding period starts on the first test day
    test_end: int  # the last test row: test decisions are test_start <= t < test_end

    @property
    def test(self) -> np.ndarray:
        """The test decision rows ``test_start .. test_end - 1``."""
        return np.arange(self.test_start, self.test_end)


def split_rows(inputs: SharpeInputs, *, train_end: str, valid_start: str, test_start: str, test_end: str,
               hold: int) -> Rows:
    """Decision rows whose labels stay inside their window.

    * train: ``seq_len - 1 <= t`` and ``t + hold`` on or before ``train_end``;
    * valid: ``t`` on or after ``valid_start`` and ``t + hold`` before ``test_start``;
    * test: decisions from the day before ``test_start`` (its returns start on ``test_start``) to
      the day before the last row on or before ``test_end``.
    """
    first = inputs.seq_len - 1
    last_train = inputs.row(train_end, side="right") - 1
    t0 = inputs.row(test_start)
    t1 = inputs.row(test_end, side="right") - 1
    v0 = max(inputs.row(valid_start), first)
    train = np.arange(first, last_train - hold + 1)
    valid = np.arange(v0, t0 - hold)
    if len(train) == 0 or len(valid) == 0 or not 0 < t0 < t1:
        raise ValueError(f"empty window: {len(train)} training and {len(valid)} validation decisions, test rows {t0}..{t1}")
    return Rows(train=train, valid=valid, test_start=t0 - 1, test_end=t1)


def levels_from_panel(panel: Panel) -> np.ndarray:
    """Log levels ``(T, N, 6)`` of :data:`FEATURES` from a :class:`Panel` (raw close = dollar volume / volume)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        raw_close = panel["dollar_volume"] / panel["volume"]
        cols = [panel["open"], panel["high"], panel["low"], panel["close"], raw_close, panel["volume"]]
        out = np.stack([np.log(np.where(c > 0, c, np.nan)) for c in cols], axis=-1)
    return out


def fit_normaliser(inputs: SharpeInputs, days: np.ndarray, *, max_days: int = 400) -> SharpeInputs:
    """``inputs`` with ``mean_``/``std_`` estimated on (at most ``max_days`` evenly spaced of) the training rows ``days``."""
    days = np.asarray(days, dtype=int)
    if len(days) > max_days:
        days = days[np.linspace(0, len(days) - 1, max_days).round().astype(int)]
    x, mask = inputs.raw_windows(days)
    v = x[mask].reshape(-1, len(FEATURES))
    mean, std = v.mean(axis=0), v.std(axis=0)
    std = np.where(std > 1e-12, std, 1.0)
    return SharpeInputs(**{**inputs.__dict__, "mean_": mean, "std_": std})


def build_inputs(panel: Panel, benchmark: pd.Series, *, n: int, window: int, first_test_day: str, test_end: str,
                 rule: str, seq_len: int) -> SharpeInputs:
    """The universe of ``rule`` (:func:`select_universe`) and its log levels, returns and benchmark."""
    names = select_universe(panel, first_test_day=first_test_day, n=n, window=window, rule=rule, test_end=test_end)
    cols = panel.instruments.get_indexer(names)
    sub = panel.subset(cols=cols)
    levels = levels_from_panel(sub)
    log.info("%s universe (%s): %d stocks, %d days %s .. %s", panel.market, rule, len(names), len(sub.dates),
             sub.dates[0].date(), sub.dates[-1].date())
    return SharpeInputs(market=panel.market, dates=sub.dates, instruments=pd.Index(names), levels=levels,
                        returns=sub["ret"].copy(), benchmark=benchmark.reindex(sub.dates).to_numpy(dtype=float),
                        seq_len=seq_len, rule=rule)

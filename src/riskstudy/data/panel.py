"""The :class:`Panel`: one market as dense ``dates x instruments`` arrays.

Every data source (US Alpha Vantage CSVs, yfinance, qlib, the synthetic market)
produces a :class:`Panel`; every later stage (features, models, risk models,
portfolios) consumes one. Arrays are ``float64`` of shape ``(T, N)`` with ``NaN``
where an instrument has no valid observation.

Fields
------
open, high, low, close, volume
    Split- and dividend-adjusted prices and split-adjusted volume.
ret
    Simple close-to-close return from ``t-1`` to ``t``
    (``close[t] / close[t-1] - 1``); ``NaN`` on the first row and wherever
    either price is missing.
dollar_volume
    Raw (unadjusted) close times raw volume, the size proxy of the study: we
    have no shares outstanding, so size is proxied by traded value.
member
    Boolean ``(T, N)``: the instrument belongs to the study universe on day ``t``
    (point-in-time: CSI300 membership for China, trailing dollar-volume rank for
    the US) and is tradable (has a valid price and non-zero volume).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

PRICE_FIELDS: tuple[str, ...] = ("open", "high", "low", "close", "volume")
NUMERIC_FIELDS: tuple[str, ...] = PRICE_FIELDS + ("ret", "dollar_volume")


@dataclass
class Panel:
    """A market as aligned ``(T, N)`` arrays.

    Parameters
    ----------
    market : str
        Market tag, e.g. ``"us"`` or ``"cn"``.
    dates : pandas.DatetimeIndex, length T
        Trading days, strictly increasing.
    instruments : pandas.Index, length N
        Instrument codes.
    fields : dict[str, numpy.ndarray]
        ``NUMERIC_FIELDS`` each as float64 ``(T, N)``.
    member : numpy.ndarray of bool, shape (T, N)
        Point-in-time universe membership.
    sector : pandas.Series or None
        Sector label per instrument (index = ``instruments``); ``None`` where the
        market has no sector data (China here).
    cleaning_log : pandas.DataFrame
        One row per cleaning action: ``instrument, date, rule, action, detail``.
    """

    market: str
    dates: pd.DatetimeIndex
    instruments: pd.Index
    fields: dict[str, np.ndarray]
    member: np.ndarray
    sector: pd.Series | None = None
    cleaning_log: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(columns=["instrument", "date", "rule", "action", "detail"])
    )

    def __post_init__(self) -> None:
        self.dates = pd.DatetimeIndex(self.dates)
        self.instruments = pd.Index(self.instruments).astype(str)
        shape = (len(self.dates), len(self.instruments))
        if not self.dates.is_monotonic_increasing or not self.dates.is_unique:
            raise ValueError("Panel.dates must be strictly increasing")
        missing = [f for f in NUMERIC_FIELDS if f not in self.fields]
        if missing:
            raise ValueError(f"Panel.fields is missing {missing}")
        for name, arr in self.fields.items():
            if arr.shape != shape:
                raise ValueError(f"Panel field {name!r} has shape {arr.shape}, expected {shape}")
        if self.member.shape != shape:
            raise ValueError(f"Panel.member has shape {self.member.shape}, expected {shape}")
        self.member = self.member.astype(bool)
        if self.sector is not None:
            self.sector = self.sector.reindex(self.instruments)

    # ------------------------------------------------------------------ access
    @property
    def shape(self) -> tuple[int, int]:
        return len(self.dates), len(self.instruments)

    def __getitem__(self, name: str) -> np.ndarray:
        return self.fields[name]

    def frame(self, name: str) -> pd.DataFrame:
        """One field as a ``dates x instruments`` DataFrame."""
        arr = self.member if name == "member" else self.fields[name]
        return pd.DataFrame(arr, index=self.dates, columns=self.instruments)

    def date_slice(self, start: str | pd.Timestamp | None = None, end: str | pd.Timestamp | None = None) -> slice:
        """Integer slice of the rows with ``start <= date <= end``."""
        lo = 0 if start is None else int(self.dates.searchsorted(pd.Timestamp(start), side="left"))
        hi = len(self.dates) if end is None else int(self.dates.searchsorted(pd.Timestamp(end), side="right"))
        return slice(lo, hi)

    def subset(self, rows: slice | None = None, cols: np.ndarray | list | None = None) -> "Panel":
        """A new panel restricted to a row slice and/or a column selection."""
        rows = slice(None) if rows is None else rows
        cidx = np.arange(self.shape[1]) if cols is None else np.asarray(cols)
        if cidx.dtype == bool:
            cidx = np.flatnonzero(cidx)
        instruments = self.instruments[cidx]
        return Panel(
            market=self.market,
            dates=self.dates[rows],
            instruments=instruments,
            fields={k: v[rows][:, cidx] for k, v in self.fields.items()},
            member=self.member[rows][:, cidx],
            sector=None if self.sector is None else self.sector.reindex(instruments),
            cleaning_log=self.cleaning_log[self.cleaning_log["instrument"].isin(instruments)].reset_index(drop=True),
        )

    def sector_codes(self) -> tuple[np.ndarray, list[str]]:
        """Integer sector code per instrument (``-1`` for unknown) and the labels."""
        if self.sector is None:
            return np.full(self.shape[1], -1, dtype=np.int64), []
        cat = pd.Categorical(self.sector.fillna("Unknown"))
        return cat.codes.astype(np.int64), [str(c) for c in cat.categories]

    # ---------------------------------------------------------------- storage
    def to_parquet(self, directory: str | Path) -> None:
        """Write ``panel.parquet`` (long format), ``instruments.parquet`` and
        ``cleaning_log.parquet`` into ``directory`` atomically (temp files then rename)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        T, N = self.shape
        long = pd.DataFrame(
            {
                "date": np.repeat(self.dates.values, N),
                "instrument": np.tile(self.instruments.values, T),
                **{k: v.reshape(-1) for k, v in self.fields.items()},
                "member": self.member.reshape(-1),
            }
        )
        keep = np.isfinite(self.fields["close"]).reshape(-1) | self.member.reshape(-1)
        inst = pd.DataFrame({"instrument": self.instruments.values})
        inst["sector"] = None if self.sector is None else self.sector.values
        outputs = {
            "panel.parquet": long[keep].reset_index(drop=True),
            "instruments.parquet": inst,
            "cleaning_log.parquet": self.cleaning_log.astype({"date": "datetime64[ns]"}) if len(self.cleaning_log) else self.cleaning_log.astype(str),
        }
        tmp_paths = []
        for name, df in outputs.items():
            tmp = directory / f".{name}.tmp"
            df.to_parquet(tmp, index=False)
            tmp_paths.append((tmp, directory / name))
        for tmp, final in tmp_paths:
            tmp.replace(final)
        (directory / "market.txt").write_text(self.market + "\n")

    @classmethod
    def from_parquet(cls, directory: str | Path) -> "Panel":
        directory = Path(directory)
        if not (directory / "panel.parquet").exists():
            raise FileNotFoundError(
                f"No prepared panel in {directory}; run the data stage first (`dvc repro data`)."
            )
        long = pd.read_parquet(directory / "panel.parquet")
        inst = pd.read_parquet(directory / "instruments.parquet")
        log = pd.read_parquet(directory / "cleaning_log.parquet")
        market = (directory / "market.txt").read_text().strip()
        dates = pd.DatetimeIndex(np.sort(long["date"].unique()))
        instruments = pd.Index(inst["instrument"].astype(str))
        ri = dates.get_indexer(pd.DatetimeIndex(long["date"]))
        ci = instruments.get_indexer(long["instrument"].astype(str))
        T, N = len(dates), len(instruments)
        fields = {}
        for k in NUMERIC_FIELDS:
            arr = np.full((T, N), np.nan)
            arr[ri, ci] = long[k].to_numpy(dtype=float)
            fields[k] = arr
        member = np.zeros((T, N), dtype=bool)
        member[ri, ci] = long["member"].to_numpy(dtype=bool)
        sector = None
        if inst["sector"].notna().any():
            sector = pd.Series(inst["sector"].values, index=instruments, name="sector")
        return cls(market, dates, instruments, fields, member, sector, log)


def returns_from_close(close: np.ndarray) -> np.ndarray:
    """Simple returns ``close[t] / close[t-1] - 1`` with a NaN first row, shape ``(T, N)``."""
    ret = np.full_like(close, np.nan, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        ret[1:] = close[1:] / close[:-1] - 1.0
    return ret

"""Kenneth French's daily research factors.

Files under ``raw_dir/fama_french_daily``: ``F-F_Research_Data_Factors_daily.CSV``
(``Mkt-RF, SMB, HML, RF``) and ``F-F_Research_Data_5_Factors_2x3_daily.CSV``
(adds ``RMW, CMA``). A few description lines precede the table, whose header
line starts with a comma; a copyright line follows it. Rows are
``YYYYMMDD, values...`` in percent.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pandas as pd

FF_DIR = "fama_french_daily"
FF3_FILE = "F-F_Research_Data_Factors_daily.CSV"
FF5_FILE = "F-F_Research_Data_5_Factors_2x3_daily.CSV"
_ROW = re.compile(r"^\s*\d{8}\s*,")
_MISSING = (-99.99, -999.0)  # French's missing-value codes


def read_fama_french(raw_dir: str | Path, *, five_factor: bool = False) -> pd.DataFrame:
    """Daily Fama-French factors as return fractions.

    Parameters
    ----------
    raw_dir : path
        Folder holding ``fama_french_daily/``.
    five_factor : bool
        Read the 5-factor (2x3) file instead of the 3-factor one.

    Returns
    -------
    pandas.DataFrame
        Index ``date`` (DatetimeIndex); columns ``Mkt-RF, SMB, HML[, RMW, CMA], RF``
        as fractions (file values / 100); French's missing codes become NaN.
    """
    path = Path(raw_dir) / FF_DIR / (FF5_FILE if five_factor else FF3_FILE)
    lines = path.read_text().splitlines()
    header = next((i for i, line in enumerate(lines) if line.startswith(",")), None)
    if header is None:
        raise ValueError(f"{path}: no table header line (a line starting with ',')")
    end = header + 1
    while end < len(lines) and _ROW.match(lines[end]):
        end += 1
    if end == header + 1:
        raise ValueError(f"{path}: line {header + 2}: expected 'YYYYMMDD,values...' after the header")
    table = pd.read_csv(io.StringIO("\n".join(lines[header:end])), index_col=0, skipinitialspace=True)
    table.columns = [c.strip() for c in table.columns]
    table.index = pd.to_datetime(table.index.astype(str).str.strip(), format="%Y%m%d")
    table.index.name = "date"
    table = table.astype(float).replace(list(_MISSING), np.nan)
    return table / 100.0


def benchmark_check(benchmark: pd.Series, factors: pd.DataFrame) -> dict:
    """How closely a market's benchmark return tracks the Fama-French market return ``Mkt-RF + RF``.

    A plausibility check of the US benchmark (our S&P 500 proxy) against an independent source,
    over the days both have.

    Parameters
    ----------
    benchmark : Series (T,)
        Daily benchmark returns (fractions), indexed by date.
    factors : DataFrame
        :func:`read_fama_french` output.

    Returns
    -------
    dict
        ``corr`` (Pearson, daily), ``n_days``, ``ann_vol_benchmark``, ``ann_vol_ff_market``.
    """
    ff = (factors["Mkt-RF"] + factors["RF"]).rename("ff")
    both = pd.concat([benchmark.rename("b"), ff], axis=1, join="inner").dropna()
    if len(both) < 2:
        raise ValueError(f"benchmark and Fama-French market share {len(both)} days: nothing to compare")
    return {"corr": float(both.b.corr(both.ff)), "n_days": int(len(both)),
            "ann_vol_benchmark": float(both.b.std() * np.sqrt(252)), "ann_vol_ff_market": float(both.ff.std() * np.sqrt(252))}

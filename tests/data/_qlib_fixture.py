"""A tiny qlib ``day`` folder with known answers, for the CN reader tests.

Format (checked against ``cn_qlib_csi300`` in ``test_cn.py``): ``calendars/day.txt``
one date a line; ``instruments/<market>.txt`` ``CODE<TAB>start<TAB>end``;
``features/<code lowercase>/<field>.day.bin`` float32 little-endian
``[start index into the calendar, value_0, value_1, ...]``.

Ten trading days, ``csi300`` membership and data:

* ``SH600001`` member all days; suspended days 3-4 (volume 0, prices
  forward-filled); a 1-for-1 bonus issue on day 6 (raw close 11.55 -> 6.0,
  ``factor`` 1 -> 2, back-adjusted close 11.55 -> 12.0).
* ``SH600002`` data from day 2 (start index 2), member days 2-4 only, trades on after.
* ``SZ000003`` data all days, member days 0-1 and again 5-9.
* ``SZ000004`` in ``all.txt`` only (never a member).
* ``SH000300`` the index.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

DATES = pd.bdate_range("2020-01-02", periods=10)
RAW_CLOSE = {
    "SH600001": np.array([10.0, 10.5, 11.0, 11.0, 11.0, 11.55, 6.0, 6.3, 6.0, 6.6]),
    "SH600002": np.array([20.0, 21.0, 20.0, 19.0, 19.5, 20.0, 21.0, 22.0]),
    "SZ000003": np.array([5.0, 5.1, 5.2, 5.0, 4.9, 5.0, 5.5, 5.4, 5.3, 5.6]),
    "SZ000004": np.linspace(8.0, 9.0, 10),
    "SH000300": np.array([4000.0, 4040.0, 4000.0, 3960.0, 4000.0, 4100.0, 4059.0, 4100.0, 4141.0, 4100.0]),
}
START = {"SH600001": 0, "SH600002": 2, "SZ000003": 0, "SZ000004": 0, "SH000300": 0}
FACTOR = {"SH600001": np.r_[np.ones(6), np.full(4, 2.0)]}
VOLUME = {"SH600001": np.array([100.0, 200.0, 150.0, 0.0, 0.0, 300.0, 600.0, 500.0, 400.0, 700.0])}
CSI300_SPANS = {"SH600001": [(0, 9)], "SH600002": [(2, 4)], "SZ000003": [(0, 1), (5, 9)]}


def day(i: int) -> str:
    """Calendar day ``i`` as ``YYYY-MM-DD``."""
    return f"{DATES[i]:%Y-%m-%d}"


def _write_bin(path: Path, start: int, values: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.r_[start, values].astype("<f4").tofile(path)


def write_tiny_qlib(root: Path) -> Path:
    """Write the folder described in the module docstring under ``root / "cn_qlib_csi300"``."""
    qdir = root / "cn_qlib_csi300"
    (qdir / "calendars").mkdir(parents=True)
    (qdir / "instruments").mkdir()
    (qdir / "calendars" / "day.txt").write_text("".join(f"{d:%Y-%m-%d}\n" for d in DATES))
    (qdir / "instruments" / "csi300.txt").write_text(
        "".join(f"{c}\t{day(s)}\t{day(e)}\n" for c, spans in CSI300_SPANS.items() for s, e in spans)
    )
    (qdir / "instruments" / "all.txt").write_text("".join(f"{c}\t{day(START[c])}\t{day(9)}\n" for c in RAW_CLOSE))
    for code, raw in RAW_CLOSE.items():
        n = len(raw)
        factor = FACTOR.get(code, np.ones(n))
        close = raw * factor
        values = {
            "open": 0.99 * close, "high": 1.01 * close, "low": 0.98 * close, "close": close,
            "volume": VOLUME.get(code, np.full(n, 1000.0)), "factor": factor,
        }
        for field, v in values.items():
            _write_bin(qdir / "features" / code.lower() / f"{field}.day.bin", START[code], v)
    return qdir

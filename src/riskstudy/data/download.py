"""Download the raw data (needs internet access).

Usage::

    python -m riskstudy.data.download us [--raw-dir DIR] [--tickers AAPL MSFT ...] [--start ..] [--end ..]
    python -m riskstudy.data.download cn [--raw-dir DIR]

``us`` writes ``DIR/sp500_daily/daily_adjusted/DA-<T>-T-<end>.csv`` with yfinance
(tickers: ``--tickers``, else ``DIR/sp500_daily/data/constituents.csv``, else
:data:`DEFAULT_TICKERS`). ``cn`` fetches qlib's own China dataset into
``DIR/cn_qlib_csi300`` with ``qlib.tests.data.GetData`` (qlib's full CN
set, a superset of the offline CSI300 subset). ``DIR`` defaults to
``$RISKSTUDY_RAW_DIR``, else ``data/raw`` under the project root.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from riskstudy.data.us import CONSTITUENTS, DAILY_DIR, read_constituents
from riskstudy.data.yfinance_source import DownloadError, download_us
from riskstudy.paths import DEFAULT_RAW_DIR, RAW_DIR_ENV, resolve

DEFAULT_TICKERS: tuple[str, ...] = ("AAPL", "MSFT", "AMZN", "JPM", "XOM", "JNJ", "PG", "KO", "WMT", "INTC")
CN_DIR = "cn_qlib_csi300"


def download_cn(target_dir: str | Path) -> None:
    """qlib's CN daily dataset into ``target_dir``; :class:`DownloadError` when it cannot be fetched."""
    from qlib.tests.data import GetData

    try:
        GetData().qlib_data(target_dir=str(target_dir), region="cn")
    except Exception as exc:  # requests/zip errors: report them as one clear failure
        raise DownloadError(f"qlib CN data download into {target_dir} failed (no internet access?): {exc}") from exc


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m riskstudy.data.download", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="market", required=True)
    us = sub.add_parser("us", help="S&P 500 daily bars via yfinance")
    cn = sub.add_parser("cn", help="qlib CN daily data")
    for p in (us, cn):
        p.add_argument("--raw-dir", type=Path, default=None,
                       help=f"raw-data folder (default: ${RAW_DIR_ENV}, else data/raw)")
    us.add_argument("--tickers", nargs="+", default=None)
    us.add_argument("--start", default="1999-11-01")
    us.add_argument("--end", default="2021-04-21")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    raw = args.raw_dir or resolve(os.environ.get(RAW_DIR_ENV) or DEFAULT_RAW_DIR)
    try:
        if args.market == "us":
            constituents = read_constituents(raw)
            tickers = args.tickers
            if tickers is None and constituents is not None:
                tickers = list(constituents["Symbol"])
            elif tickers is None:
                tickers = list(DEFAULT_TICKERS)
                logging.warning("no %s: downloading the default tickers %s", raw / CONSTITUENTS, tickers)
            files = download_us(tickers, start=args.start, end=args.end, out_dir=raw / DAILY_DIR)
            print(f"wrote {len(files)} file(s) to {raw / DAILY_DIR}")
        else:
            download_cn(raw / CN_DIR)
            print(f"qlib CN data in {raw / CN_DIR}")
    except DownloadError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

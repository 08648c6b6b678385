"""Time the data preparation: ``python -m riskstudy.bench_data [--raw-dir DIR]``.

Prints the wall time and peak resident memory (``getrusage`` ``ru_maxrss`` of
this process and of any children) of building the full US panel (every
ticker file, 2000-2020, top 300). Targets: < 60 s and < 3 GB on 2 cores.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from riskstudy.data.us import load_us_panel
from riskstudy.paths import raw_dir
from riskstudy.reporting import peak_rss_mb


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m riskstudy.bench_data", description=__doc__.split("\n")[0])
    parser.add_argument("--raw-dir", type=Path, default=None, help="raw-data folder (default: configured location)")
    parser.add_argument("--start", default="2000-01-01")
    parser.add_argument("--end", default="2020-12-31")
    parser.add_argument("--top-n", type=int, default=300)
    args = parser.parse_args(argv)
    raw = args.raw_dir or raw_dir(require="sp500_daily")

    t0 = time.perf_counter()
    panel = load_us_panel(raw, start=args.start, end=args.end, top_n=args.top_n)
    wall = time.perf_counter() - t0
    T, N = panel.shape
    print(f"us panel: {T} days x {N} instruments, {len(panel.cleaning_log)} cleaning actions")
    print(f"wall time: {wall:.1f} s (target < 60 s)")
    print(f"peak RSS:  {peak_rss_mb():.0f} MiB (target < 3072 MiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

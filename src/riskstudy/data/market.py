"""A prepared market as every stage after ``data`` reads it: the panel and its benchmark.

Written by the data stage (:mod:`riskstudy.data.prepare`) to ``<prepared_dir>/<market>/``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from riskstudy import paths
from riskstudy.config import Params
from riskstudy.data.panel import Panel


@dataclass
class MarketData:
    """A prepared market: the panel and its benchmark return series (aligned to ``panel.dates``)."""

    panel: Panel
    benchmark: pd.Series
    benchmark_name: str


def prepared_dir(params: Params, market: str) -> Path:
    return paths.resolve(params.paths.prepared_dir) / market


def save_market(data: MarketData, directory: str | Path) -> None:
    directory = Path(directory)
    data.panel.to_parquet(directory)
    tmp = directory / ".benchmark.parquet.tmp"
    data.benchmark.to_frame().assign(name=data.benchmark_name).to_parquet(tmp)
    tmp.replace(directory / "benchmark.parquet")


def load_market(params: Params, market: str) -> MarketData:
    """Reload the prepared market written by the data stage."""
    directory = prepared_dir(params, market)
    panel = Panel.from_parquet(directory)
    b = pd.read_parquet(directory / "benchmark.parquet")
    return MarketData(panel=panel, benchmark=b["benchmark"].reindex(panel.dates), benchmark_name=str(b["name"].iloc[0]))

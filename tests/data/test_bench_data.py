"""The data benchmark CLI on a tiny fixture."""

from __future__ import annotations

from riskstudy import bench_data

from ._us_fixture import random_market


def test_bench_data_prints_wall_time_and_peak_rss(tmp_path, capsys):
    random_market(tmp_path, n_tickers=3, n_days=300)
    argv = ["--raw-dir", str(tmp_path), "--top-n", "2", "--start", "2020-01-01", "--end", "2021-12-31"]
    assert bench_data.main(argv) == 0
    out = capsys.readouterr().out
    assert "300 days x 2 instruments" in out and "wall time:" in out and "peak RSS:" in out

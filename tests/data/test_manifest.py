"""Tests for riskstudy.data.manifest: the raw-data dependency of the data stage."""

import json

from riskstudy.data.manifest import main, raw_manifest


def _tree(root):
    (root / "sp500_daily" / "daily_adjusted").mkdir(parents=True)
    (root / "sp500_daily" / "daily_adjusted" / "DA-A-T.csv").write_text("timestamp,close\n2020-01-02,1\n")
    (root / "sp500_daily" / "README").write_text("x")
    (root / "fama_french_daily").mkdir()
    (root / "fama_french_daily" / "F-F_Research_Data_Factors_daily.CSV").write_text(",Mkt-RF,SMB,HML,RF\n")


def test_manifest_depends_on_content_not_on_location(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    _tree(a)
    _tree(b)
    assert raw_manifest(a, ("sp500_daily",)) == raw_manifest(b, ("sp500_daily",))
    (b / "sp500_daily" / "daily_adjusted" / "DA-A-T.csv").write_text("timestamp,close\n2020-01-02,100\n")
    assert raw_manifest(a, ("sp500_daily",)) != raw_manifest(b, ("sp500_daily",))
    (b / "sp500_daily" / "extra.csv").write_text("")
    assert "sp500_daily/extra.csv" in raw_manifest(b, ("sp500_daily",))["files"]


def test_cli_rewrites_nothing_when_content_is_unchanged(tmp_path, monkeypatch):
    _tree(tmp_path / "raw")
    monkeypatch.setenv("RISKSTUDY_RAW_DIR", str(tmp_path / "raw"))
    params = tmp_path / "params.yaml"
    from riskstudy.config import write_profile
    from tests.test_config import ROOT

    write_profile("smoke", params, ROOT / "profiles")
    out = tmp_path / "m" / "us.json"
    main(["--params", str(params), "--market", "us", "--out", str(out)])
    first = out.stat().st_mtime_ns
    main(["--params", str(params), "--market", "us", "--out", str(out)])
    assert out.stat().st_mtime_ns == first
    # the US data stage reads the prices and, for its benchmark check, the Fama-French factors
    assert list(json.loads(out.read_text())["files"]) == [
        "fama_french_daily/F-F_Research_Data_Factors_daily.CSV", "sp500_daily/README", "sp500_daily/daily_adjusted/DA-A-T.csv"]

"""The README's study command, run as a user would: ``make study PROFILE=smoke RAW=<data>`` in a scratch clone.

The scratch clone holds what a commit of this working tree would hold (tracked files and untracked
ones git does not ignore; less ``dvc.lock``, which the smoke run writes anew), with git initialised; it shares this checkout's ``.venv`` (linked, so the
lock is not installed twice). The command runs from an environment whose PATH holds no virtual
environment, so it proves that the Makefile, not the caller, puts the project's interpreter on PATH.
``RAW`` points at a folder of links to the real data (one CSV can then be replaced without touching
the real files). After the run the test checks, in the same clone:

* every metrics file follows its schema and is stamped with the smoke profile;
* a forced rerun with the same params leaves ``dvc metrics diff`` empty (deterministic; no timings in metrics);
* replacing one raw file makes the data stage out of date (the raw manifest is its dependency);
* changing ``drm.train_start`` retrains (no finished checkpoint is reused) and changes the metrics;
* summarising under another profile leaves the smoke results out, naming them.
"""

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from riskstudy import paths
from riskstudy.config import load_params
from tests.realdata import real_raw_dir

ROOT = Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.slow, pytest.mark.realdata]


def plain_env() -> dict[str, str]:
    """This process's environment without any virtual environment (a plain shell), without the raw-data override,
    and without the variables of an enclosing ``make test RAW=...`` (make passes its command-line variables to
    every make below it through MAKEFLAGS and exports them to the environment: the scratch clone's ``make dvc``
    would re-link ``data/raw`` to the enclosing RAW)."""
    drop = ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", paths.RAW_DIR_ENV, "MAKEFLAGS", "MFLAGS", "MAKELEVEL",
            "MAKEOVERRIDES", "RAW", "PROFILE", "ARGS", "PYTHON")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    venvs = {str(ROOT / ".venv" / "bin")} | ({os.environ["VIRTUAL_ENV"] + "/bin"} if "VIRTUAL_ENV" in os.environ else set())
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep)
                                  if p and p.rstrip("/") not in venvs and "/.venv/" not in p + "/")
    return {**env, "PYTHONUNBUFFERED": "1", "GIT_AUTHOR_NAME": "smoke", "GIT_AUTHOR_EMAIL": "smoke@test",
            "GIT_COMMITTER_NAME": "smoke", "GIT_COMMITTER_EMAIL": "smoke@test"}


def run(cmd: list[str], cwd: Path, env: dict[str, str], *, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if check and proc.returncode != 0:
        pytest.fail(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-6000:]}\n{proc.stderr[-6000:]}")
    return proc


def scratch_clone(work: Path, env: dict[str, str]) -> None:
    """Copy the files a commit would hold (mtimes kept, so make sees the shared .venv as up to date) and git-init."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, capture_output=True,
                            check=True).stdout.decode().split("\0")
    for rel in filter(None, listed):
        src = ROOT / rel
        if not src.exists() and not src.is_symlink():
            continue  # deleted in the working tree
        dst = work / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dst, follow_symlinks=False)
    (work / ".venv").symlink_to(ROOT / ".venv", target_is_directory=True)
    # The committed dvc.lock records the default profile's ~150 stages (32k lines). DVC parses and rewrites the
    # whole file after every stage (about 6 s + 4 s at that size), which made up half of the smoke run's time;
    # a smoke run replaces every entry it runs anyway, so the clone starts from no lock.
    (work / "dvc.lock").unlink(missing_ok=True)
    for cmd in (["git", "init", "-q"], ["git", "add", "-A"], ["git", "commit", "-qm", "scratch clone"]):
        run(cmd, work, env)


def link_farm(raw: Path, farm: Path) -> None:
    """``farm`` mirrors ``raw`` with links: the US CSVs one by one (replaceable), every other folder whole."""
    farm.mkdir(parents=True, exist_ok=True)
    for child in raw.iterdir():
        if child.name == "sp500_daily":
            for f in child.rglob("*"):
                if f.is_file():
                    (farm / f.relative_to(raw)).parent.mkdir(parents=True, exist_ok=True)
                    (farm / f.relative_to(raw)).symlink_to(f)
        else:
            (farm / child.name).symlink_to(child)


@pytest.fixture(scope="module")
def smoke_repo(tmp_path_factory):
    raw = real_raw_dir("sp500_daily", "cn_qlib_csi300").resolve()
    base = tmp_path_factory.mktemp("smoke")
    work, farm = base / "repo", base / "raw"
    env = plain_env()
    scratch_clone(work, env)
    link_farm(raw, farm)
    t0 = time.perf_counter()
    proc = run(["make", "study", "PROFILE=smoke", f"RAW={farm}"], work, env, check=False)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        pytest.fail(f"make study PROFILE=smoke failed after {elapsed:.0f}s:\n{proc.stdout[-6000:]}\n{proc.stderr[-6000:]}")
    print(f"smoke pipeline (make study PROFILE=smoke): {elapsed:.0f}s")
    run(["git", "add", "-A"], work, env)
    run(["git", "commit", "-qm", "smoke results"], work, env)
    return work, farm, env, elapsed


def dvc(work: Path, env: dict[str, str], args: str) -> subprocess.CompletedProcess:
    """``make dvc ARGS=...``: the README's way to call dvc with the project's interpreter."""
    return run(["make", "dvc", f"ARGS={args}"], work, env)


def test_smoke_pipeline_is_quick(smoke_repo):
    """Target 5 minutes on 2 cores (dvc repro of every stage); the bound catches hangs and gross regressions."""
    elapsed = smoke_repo[3]
    assert elapsed < 900, f"smoke pipeline took {elapsed:.0f}s"


@pytest.mark.parametrize("market", ["us", "cn"])
def test_metrics_files_follow_the_schema(smoke_repo, market):
    work = smoke_repo[0]
    m = work / "reports" / "metrics"
    t1 = json.loads((m / f"table1_{market}.json").read_text())
    assert t1.pop("_meta")["profile"] == "smoke"
    for row in ("Market", "FRM", "SRM", "SRM x2", "DRM", "DRM x2"):
        assert set(t1[row]) >= {"r2", "gmv_vol", "gmv_long_vol"}
        assert 0 < t1[row]["gmv_vol"] < 2
    assert t1["Market"]["r2"] is None and 0 < t1["DRM"]["r2"] < 1
    t2 = json.loads((m / f"table2_{market}.json").read_text())
    assert t2.pop("_meta")["profile"] == "smoke"
    for stats in t2.values():
        assert set(stats) == {"mean_abs_t", "pct_abs_t_gt_2", "vif", "autocorr"}
        assert 0 <= stats["pct_abs_t_gt_2"] <= 1 and stats["vif"] >= 1 - 1e-9
    ab_file = m / f"ablations_{market}.json"
    if market not in load_params(work / "params.yaml").ablations.markets:  # smoke: ablations on the US only
        assert not ab_file.exists() or json.loads(ab_file.read_text()).get("_meta", {}).get("profile") != "smoke"
        return
    ab = json.loads(ab_file.read_text())
    assert ab.pop("_meta")["profile"] == "smoke"
    assert set(ab) == {"gat", "lambda", "multitask", "learning"}
    assert {g: v["n_runs"] for g, v in ab["learning"].items()} and all(
        -1 < v["gain"]["mean"] < 1 for v in ab["learning"].values())  # every ablation run reports its gain over its own init
    for v in ab["gat"].values():
        assert set(v["with"]) >= {"mean", "lo", "hi"}
    assert set(ab["multitask"]) >= {"multi", "single"}


@pytest.mark.parametrize("market", ["us", "cn"])
def test_cae_metrics_follow_the_schema_and_enter_table1(smoke_repo, market):
    m = smoke_repo[0] / "reports" / "metrics"
    cae = json.loads((m / f"cae_{market}.json").read_text())
    assert cae.pop("_meta")["profile"] == "smoke"
    assert {"CA0", "CA1", "IPCA", "PCA"} <= set(cae) and ({"FF3", "FF5"} <= set(cae)) == (market == "us")
    for by_k in cae.values():
        for row in by_k.values():
            assert {"r2_total", "r2_pred", "r2_total_portfolios", "r2_pred_portfolios"} <= set(row)
    assert set(cae["CA1"]["2"]["seeds"]["r2_total"]) == {"mean", "lo", "hi", "n", "min", "max"}
    t1 = json.loads((m / f"table1_{market}.json").read_text())
    assert {"CAE", "IPCA"} <= set(t1) and 0 < t1["CAE"]["gmv_vol"] < 2


@pytest.mark.parametrize("market", ["us", "cn"])
def test_sharpe_metrics_follow_the_schema(smoke_repo, market):
    m = smoke_repo[0] / "reports" / "metrics"
    bt = json.loads((m / f"sharpe_{market}.json").read_text())
    assert bt.pop("_meta")["profile"] == "smoke"
    keys = {"cum_return", "ann_return", "vol", "max_drawdown", "sharpe", "calmar", "sortino", "turnover"}
    assert {"GRU", "GRU (untrained)", "Linear", "Equal weight", "Max-Sharpe (Ledoit-Wolf)", "Index"} <= set(bt)
    assert all(keys <= set(row) for row in bt.values())
    assert {"sharpe_lo", "sharpe_hi"} <= set(bt["GRU"]) and "sharpe_lo" not in bt["Equal weight"]
    assert ("GRU (hindsight universe)" in bt) == (market == "us")
    claims = json.loads((m / f"sharpe_claims_{market}.json").read_text())
    assert set(claims["counts"]) == {"win", "tie", "loss"} and claims["answers"]
    nets = json.loads((m / f"sharpe_nets_{market}.json").read_text())
    assert {"valid_sharpe", "untrained", "gain"} <= set(nets["GRU"])
    assert {f"{rule} ({route})" for rule in ("Max-Sharpe", "Min-variance")
            for route in ("CovNet", "untrained CovNet", "DRM", "untrained DRM", "FRM", "SRM", "Ledoit-Wolf")} <= set(bt)
    cov = json.loads((m / f"sharpe_covnet_{market}.json").read_text())
    assert {"valid_score", "untrained", "gain"} <= set(cov["training"])
    assert {"CovNet", "untrained CovNet", "DRM", "untrained DRM", "FRM", "SRM", "Ledoit-Wolf"} == set(cov["forecast"])
    assert set(cov["drm"]) and all({"best_epoch", "valid_r2", "valid_r2_untrained"} <= set(r) for r in cov["drm"].values())
    assert all({"gmv_vol", "gmv_long_vol", "bias_gmv", "qlike_gmv"} <= set(r) for r in cov["forecast"].values())


def test_every_metrics_file_is_stamped_and_holds_no_timings(smoke_repo):
    work = smoke_repo[0]
    ablation_markets = load_params(work / "params.yaml").ablations.markets
    # the clone also carries the committed default-profile results; the smoke run rewrites all but the
    # ablations of markets it leaves out (checked in the schema test)
    files = [f for f in sorted((work / "reports" / "metrics").glob("*.json"))
             if not (f.stem.startswith("ablations_") and f.stem.removeprefix("ablations_") not in ablation_markets)]
    assert len(files) >= 10
    for f in files:
        d = json.loads(f.read_text())
        assert d["_meta"]["profile"] == "smoke" and d["_meta"]["params"], f.name
        assert "*" not in d["_meta"]["params"], f"{f.name}: no dvc.yaml stage declares it"
        text = json.dumps(d)
        assert "seconds" not in text and "peak_rss" not in text, f"{f.name} holds timings"
    assert (work / "reports" / "timings" / "drm_training_us.json").exists()


def test_executed_notebooks_are_committed_outputs_and_the_summary_links_them(smoke_repo):
    work = smoke_repo[0]
    params = load_params(work / "params.yaml")
    tracked = set(run(["git", "ls-files", "reports/notebooks"], work, smoke_repo[2]).stdout.split())
    summary = (work / "reports" / "SUMMARY.md").read_text()
    assert "Table 1" in summary and "Ablations" in summary
    for nb in ("10_data", "20_deep_risk_model", "21_risk_model_evaluation", "40_conditional_autoencoder",
               "50_sharpe_networks", "51_covariance_network", "52_portfolio_backtests"):
        for market in params.markets:
            name = f"reports/notebooks/{nb}_{market}.ipynb"
            assert name in tracked, f"{name} is not in git"
            assert (work / name).with_suffix(".html").exists()
            assert (work / name).stat().st_size < 2 * 2**20
            assert f"(notebooks/{nb}_{market}.ipynb)" in summary
    executed = json.loads((work / "reports/notebooks/21_risk_model_evaluation_us.ipynb").read_text())
    assert any(c.get("outputs") for c in executed["cells"] if c["cell_type"] == "code")
    assert not any(f.endswith(".html") for f in tracked), "HTML renders stay DVC outputs"


def test_forced_rerun_with_the_same_params_diffs_to_nothing(smoke_repo):
    work, _, env, _ = smoke_repo
    dvc(work, env, "repro -s -f drm@us")
    diff = dvc(work, env, "metrics diff --json").stdout
    payload = json.loads(diff[diff.index("{"):diff.rindex("}") + 1]) if "{" in diff else {}
    assert not payload, f"same params, different metrics: {payload}"
    run(["git", "checkout", "--", "."], work, env)


def test_a_replaced_raw_file_puts_the_data_stage_out_of_date(smoke_repo):
    work, farm, env, _ = smoke_repo
    csv = next((farm / "sp500_daily").rglob("DA-AAPL-*.csv"))
    target = csv.resolve()
    csv.unlink()
    lines = target.read_text().splitlines()
    csv.write_text("\n".join(lines[:-1]) + "\n")  # a changed file: its last row dropped
    try:
        dvc(work, env, "repro raw_manifest@us")
        status = dvc(work, env, "status data@us").stdout
        assert "changed deps" in status and "manifest" in status, status
        assert "up to date" in dvc(work, env, "status data@cn").stdout  # the other market's data is untouched
    finally:
        csv.unlink()
        csv.symlink_to(target)
        dvc(work, env, "repro raw_manifest@us")
    assert "up to date" in dvc(work, env, "status data@us").stdout


def test_a_changed_training_window_retrains(smoke_repo):
    work, _, env, _ = smoke_repo
    params_file = work / "params.yaml"
    before = json.loads((work / "reports/metrics/drm_training_us.json").read_text())["runs"]
    p = yaml.safe_load(params_file.read_text())
    p["drm"]["train_start"] = "2013-09-02"
    params_file.write_text(yaml.safe_dump(p, sort_keys=False))
    try:
        out = dvc(work, env, "repro drm@us")
        after = json.loads((work / "reports/metrics/drm_training_us.json").read_text())["runs"]
        assert "resuming" not in (out.stdout + out.stderr).lower()
        assert any(after[r]["valid_r2"] != before[r]["valid_r2"] for r in before), "a changed window reused old results"
    finally:
        run(["git", "checkout", "--", "."], work, env)


def test_the_summary_refuses_results_of_another_profile(smoke_repo):
    work, _, env, _ = smoke_repo
    try:
        run([str(work / ".venv/bin/python"), "-m", "riskstudy.config", "default"], work, env)
        dvc(work, env, "repro -s summary")
        summary = (work / "reports" / "SUMMARY.md").read_text()
        assert "profile **default**" in summary
        assert "Left out: results written by another run" in summary
        assert "`metrics/table1_us.json`: written by profile 'smoke'" in summary
        assert "| DRM |" not in summary  # no smoke Table 1 under the default profile's name
    finally:
        run(["git", "checkout", "--", "."], work, env)

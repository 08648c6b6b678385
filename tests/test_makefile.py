"""The Makefile front door: the interpreter it builds the environment with, and the PATH it gives DVC."""

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _copy_front_door(tmp_path: Path) -> None:
    for name in ("Makefile", "requirements.lock", "pyproject.toml"):
        shutil.copy2(ROOT / name, tmp_path / name)


def test_setup_refuses_a_python_older_than_the_lock_needs(tmp_path):
    _copy_front_door(tmp_path)
    fake = tmp_path / "python-old"
    fake.write_text('#!/bin/sh\n[ "$1" = "--version" ] && { echo "Python 3.11.2"; exit 0; }\n'
                    'exec python3 -c "import sys; sys.exit(1)"\n')
    fake.chmod(0o755)
    proc = subprocess.run(["make", "setup", f"PYTHON={fake}"], cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode != 0
    assert "Python >= 3.11.5 is needed" in proc.stderr and "3.11.2" in proc.stderr
    assert not (tmp_path / ".venv").exists(), "no environment is built with the wrong interpreter"


def test_every_dvc_call_gets_the_project_interpreter_first_on_path(tmp_path):
    for target in (["study"], ["study", "PROFILE=smoke"], ["dvc", "ARGS=exp run -S drm.lambda=0.1"]):
        dry = subprocess.run(["make", "-n", "-W", "requirements.lock", *target], cwd=ROOT, capture_output=True,
                             text=True, check=True).stdout
        dvc_lines = [line for line in dry.splitlines() if " dvc " in f" {line} "]
        assert dvc_lines, target
        for line in dvc_lines:
            assert f'PATH="{ROOT}/.venv/bin:$PATH"' in line, line

"""Manifest of the raw inputs: the DVC dependency that makes the data stage see changed raw files.

The raw-data location is configuration (``paths.raw_dir``, or ``RISKSTUDY_RAW_DIR``), often a link
to a folder outside the repository, so DVC cannot track it directly. The ``raw_manifest`` stage
(``always_changed``) runs this module on every ``dvc repro``: it lists every raw file of a market
with its size and SHA-1 into a small JSON file, and the data stage depends on that file. When the
content is the same the manifest is byte-identical and nothing downstream reruns; when any raw file
is replaced, added or removed (or the location points at other data, through either setting) the
manifest changes and the data stage reruns.

``python -m riskstudy.data.manifest --params params.yaml --market us --out data/manifest/us.json``
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
from pathlib import Path

from riskstudy.config import load_params
from riskstudy.paths import raw_dir

log = logging.getLogger(__name__)

#: Raw sub-folders each market's data stage reads.
RAW_FOLDERS: dict[str, tuple[str, ...]] = {"us": ("sp500_daily", "fama_french_daily"), "cn": ("cn_qlib_csi300",)}


def file_digest(path: Path, *, chunk: int = 1 << 20) -> str:
    """SHA-1 of a file's bytes."""
    h = hashlib.sha1()
    with path.open("rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def raw_manifest(root: str | os.PathLike, folders: tuple[str, ...]) -> dict:
    """``{"folders": [...], "files": {relative path: {"size": bytes, "sha1": hex}}}`` of ``folders`` under ``root``.

    Paths are relative to ``root`` (with ``/``), sorted, so the manifest does not depend on where
    the data lives, only on what it is. Links are followed.
    """
    root = Path(root)
    files: dict[str, dict] = {}
    for folder in folders:
        base = root / folder
        if not base.exists():
            raise FileNotFoundError(f"raw folder {base} not found (paths.raw_dir / RISKSTUDY_RAW_DIR)")
        for dirpath, _, names in os.walk(base, followlinks=True):
            for name in names:
                p = Path(dirpath) / name
                files[p.relative_to(root).as_posix()] = {"size": p.stat().st_size, "sha1": file_digest(p)}
    return {"folders": list(folders), "files": dict(sorted(files.items()))}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Write the manifest of a market's raw files (a DVC stage).")
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--market", required=True, choices=sorted(RAW_FOLDERS))
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    params = load_params(args.params)
    root = raw_dir(params.paths.raw_dir, require=RAW_FOLDERS[args.market][0])
    manifest = raw_manifest(root, RAW_FOLDERS[args.market])
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(manifest, indent=1) + "\n"
    if not out.exists() or out.read_text() != text:
        out.write_text(text)
    total = sum(f["size"] for f in manifest["files"].values())
    print(f"raw manifest {args.market}: {len(manifest['files'])} files, {total / 2**20:.0f} MiB under {root} -> {out}")


if __name__ == "__main__":
    main()

"""Which run wrote a results file: profile and params stamps, read from the stage that declares the file.

Every metrics file carries ``"_meta": {"profile": ..., "params": {section: hash}}`` (written by
:func:`riskstudy.reporting.write_metrics`). The sections are exactly the ``params:`` entries of the
``dvc.yaml`` stage whose outputs include that file, so a file is stale only when a parameter *its
own stage reads* changed: after ``drm.lambda`` changes, the data stage's metrics stay valid while
the DRM stage's do not. :func:`stale_reason` is the check the summary applies to every file it
reads.

``dvc.yaml`` is parsed here with plain YAML and a small subset of DVC's templating (``${item}``,
``${item.<key>}`` for ``foreach``/``matrix`` stages and ``${<section>.<key>}`` from params), which
is all this project's pipeline uses.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from riskstudy.paths import project_root

_REF = re.compile(r"\$\{([^}]+)\}")


def _lookup(tree: dict, dotted: str) -> Any:
    node: Any = tree
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            raise KeyError(dotted)
        node = node[part]
    return node


def _digest(value: Any) -> str:
    """12-hex-digit SHA-1 of the canonical JSON of ``value``."""
    return hashlib.sha1(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:12]


def section_hash(params: dict, dotted: str) -> str:
    """:func:`_digest` of one params entry (``"split"``, ``"drm.lambda"``, ...)."""
    return _digest(_lookup(params, dotted))


@dataclass(frozen=True)
class StageOutputs:
    """One ``dvc.yaml`` stage: its output path templates and the params entries it reads."""

    name: str
    outputs: tuple[str, ...]
    params: tuple[str, ...]


def _entries(items: list) -> list[str]:
    """Names in a ``deps``/``outs``/``metrics``/``params`` list (strings or one-key mappings)."""
    out = []
    for it in items or []:
        out.extend(it.keys() if isinstance(it, dict) else [it])
    return [str(o) for o in out]


def pipeline_stages(dvc_yaml: str | Path | None = None) -> list[StageOutputs]:
    """The stages of ``dvc.yaml`` (``foreach``/``matrix`` bodies unexpanded)."""
    path = Path(dvc_yaml) if dvc_yaml is not None else project_root() / "dvc.yaml"
    stages = yaml.safe_load(path.read_text())["stages"]
    out = []
    for name, st in stages.items():
        body = st.get("do", st)
        outputs = tuple(_entries(body.get("outs")) + _entries(body.get("metrics")) + _entries(body.get("plots")))
        out.append(StageOutputs(name, outputs, tuple(_entries(body.get("params")))))
    return out


def _template_regex(template: str, params: dict) -> re.Pattern:
    """``template`` as a regex: ``${item...}`` become named groups, other references their params values."""
    pieces, pos, groups = [], 0, {}
    for m in _REF.finditer(template):
        pieces.append(re.escape(template[pos:m.start()]))
        ref = m.group(1)
        if ref == "item" or ref.startswith("item."):
            g = "item" if ref == "item" else "item__" + ref[5:]
            pieces.append(f"(?P={g})" if g in groups else f"(?P<{g}>[^/]+)")
            groups[g] = True
        else:
            pieces.append(re.escape(str(_lookup(params, ref))))
        pos = m.end()
    pieces.append(re.escape(template[pos:]))
    return re.compile("".join(pieces) + r"(/.*)?")


def _fill(template: str, match: re.Match, params: dict) -> str:
    def sub(m: re.Match) -> str:
        ref = m.group(1)
        if ref == "item":
            return match.group("item")
        if ref.startswith("item."):
            return match.group("item__" + ref[5:])
        return str(_lookup(params, ref))

    return _REF.sub(sub, template)


def stage_params(path: str | Path, params: dict, *, root: str | Path | None = None) -> list[str] | None:
    """The params entries read by the stage that writes ``path`` (``None`` if no stage declares it).

    Parameters
    ----------
    path : path-like
        The results file, absolute or relative to the project root. A file outside the project
        is matched by its trailing path (``.../reports/metrics/table1_us.json``).
    params : dict
        The params mapping (``params.yaml`` as read), to resolve ``${section.key}`` references.
    root : path-like, optional
        The project root holding ``dvc.yaml`` (default: :func:`riskstudy.paths.project_root`).
    """
    root = Path(root) if root is not None else project_root()
    if not (root / "dvc.yaml").exists():
        return None
    p = Path(path)
    p = p.resolve() if p.is_absolute() else (root / p).resolve()
    try:
        candidates = [p.relative_to(root.resolve()).as_posix()]
    except ValueError:  # outside the project (a scratch tree laid out like it): try its trailing parts
        candidates = ["/".join(p.parts[i:]) for i in range(1, len(p.parts))]
    stages = pipeline_stages(root / "dvc.yaml")
    for rel in candidates:
        for st in stages:
            for template in st.outputs:
                m = _template_regex(template, params).fullmatch(rel)
                if m:
                    return [_fill(t, m, params) for t in st.params]
    return None


def stamp(path: str | Path, params: Any, *, root: str | Path | None = None) -> dict:
    """The ``_meta`` block of a results file written with ``params`` (a :class:`~riskstudy.config.Params` or mapping).

    ``{"profile": ..., "params": {entry: hash}}`` over the writing stage's params entries; a file
    no stage declares (a scratch or test path) is stamped with the hash of all of params (``"*"``).
    """
    raw = params.model_dump(mode="json", by_alias=True) if hasattr(params, "model_dump") else dict(params)
    entries = stage_params(path, raw, root=root)
    hashes = {"*": _digest(raw)} \
        if entries is None else {e: section_hash(raw, e) for e in entries}
    return {"profile": raw.get("profile"), "params": hashes}


def stale_reason(meta: dict | None, params: Any) -> str | None:
    """Why a file stamped ``meta`` does not belong to the run of ``params`` (``None`` if it does)."""
    raw = params.model_dump(mode="json", by_alias=True) if hasattr(params, "model_dump") else dict(params)
    if not meta:
        return "no provenance stamp (written by an older version)"
    if meta.get("profile") != raw.get("profile"):
        return f"written by profile {meta.get('profile')!r}, the params are profile {raw.get('profile')!r}"
    changed = []
    for entry, h in (meta.get("params") or {}).items():
        if entry == "*":
            now = _digest(raw)
        else:
            try:
                now = section_hash(raw, entry)
            except KeyError:
                now = None
        if now != h:
            changed.append(entry)
    return f"params changed since it was written: {', '.join(changed)}" if changed else None

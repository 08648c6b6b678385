"""The Deep Risk Model as the pipeline scores it: the exposures its own stage trained and stored.

The DRM is trained in the ``drm`` stage (notebook 20, :func:`~riskstudy.factors.drm_runs.train_suite`),
which writes one exposure file per K and seed, and one per K for the untrained control, to
``<models_dir>/<market>/``. Scoring reads them (:class:`~riskstudy.factors.base.StoredExposures`),
so a change to the risk pipeline never retrains a network. :class:`~riskstudy.factors.drm_runs.DeepRiskFactorModel` is the
same network behind the :class:`~riskstudy.factors.base.FactorModel` interface, for code that fits
and predicts in one process (the planted-factor check, tests).
"""

from __future__ import annotations

from pathlib import Path


from riskstudy import paths
from riskstudy.config import Params
from riskstudy.factors.base import ModelSpec, Run, StoredExposures
from riskstudy.factors.store import probe_name, run_name, untrained_name


def drm_models_dir(params: Params, market: str) -> Path:
    """Where the DRM stage stores a market's exposures (trained runs and untrained controls)."""
    return paths.resolve(params.paths.models_dir) / market


def factor_names(k: int) -> list[str]:
    return [f"drm_{i + 1}" for i in range(k)]


def _ks(params: Params) -> tuple[tuple[str, int], ...]:
    return (("DRM", params.drm.n_factors), ("DRM x2", params.drm.k_double))


def input_files(params: Params, market: str) -> list[Path]:
    """The DRM-stage outputs scoring reads: every seed of K and 2K, their linear probes, then the untrained controls."""
    root = drm_models_dir(params, market)
    return [root / f"{name(k, s)}.npz" for name in (run_name, probe_name) for _, k in _ks(params)
            for s in params.drm.seeds] + [root / f"{untrained_name(k)}.npz" for _, k in _ks(params)]


def _runs(params: Params, market: str) -> list[Run]:
    root = drm_models_dir(params, market)

    def stored(name: str, k: int):
        return lambda: StoredExposures(root / f"{name}.npz", names=factor_names(k))

    runs = [Run(f"{label}{suffix} s{seed}", f"{label}{suffix}", seed=seed, factor_model=stored(name(k, seed), k))
            for suffix, name in (("", run_name), (" linear probe", probe_name))
            for label, k in _ks(params) for seed in params.drm.seeds]
    return runs + [Run(f"{label} untrained", f"{label} untrained", factor_model=stored(untrained_name(k), k))
                   for label, k in _ks(params)]


#: Registered as ``drm``: rows "DRM" and "DRM x2" (one run per seed), their linear probes ("DRM linear probe",
#: "DRM x2 linear probe", per seed) and their untrained controls.
SPEC = ModelSpec("drm", runs=_runs, trained_by="drm", required=input_files)

"""The models the pipeline can score, by key (the names of ``evaluation.models``).

A built-in model is a module with a ``SPEC`` (:class:`~riskstudy.factors.base.ModelSpec`), found
through :data:`BUILTIN` and imported only when asked for, so a model's stage loads (and depends
on) its own module only. Adding a model: write its :class:`~riskstudy.factors.base.FactorModel`
and ``SPEC`` in one module, give it a config section, add it here (or call :func:`register`),
list it in ``evaluation.models`` and give it a ``score_<key>`` stage in ``dvc.yaml``. Nothing in
the pipeline changes::

    register(ModelSpec("toy", runs=lambda params, market: [Run("Toy", "Toy", factor_model=lambda: Toy(params.toy))]))
"""

from __future__ import annotations

import importlib

from riskstudy.config import ConfigError
from riskstudy.factors.base import ModelSpec

#: Built-in models: key -> module holding its ``SPEC``.
BUILTIN: dict[str, str] = {
    "frm": "riskstudy.factors.frm",
    "srm": "riskstudy.factors.srm",
    "drm": "riskstudy.factors.drm",
    "dense": "riskstudy.risk.dense",
    "cae": "riskstudy.cae.factor_model",
}

_REGISTRY: dict[str, ModelSpec] = {}


def register(spec: ModelSpec, *, replace: bool = False) -> ModelSpec:
    """Make ``spec`` scorable under ``spec.key``; registering a taken key needs ``replace=True``."""
    if (spec.key in _REGISTRY or spec.key in BUILTIN) and not replace:
        raise ValueError(f"a model is already registered as {spec.key!r}")
    _REGISTRY[spec.key] = spec
    return spec


def unregister(key: str) -> None:
    _REGISTRY.pop(key, None)


def registered() -> list[str]:
    return list(BUILTIN) + [k for k in _REGISTRY if k not in BUILTIN]


def get(key: str) -> ModelSpec:
    """The spec of ``key``; :class:`~riskstudy.config.ConfigError` naming ``evaluation.models`` if unknown."""
    if key in _REGISTRY:
        return _REGISTRY[key]
    if key in BUILTIN:
        spec = importlib.import_module(BUILTIN[key]).SPEC
        if spec.key != key:
            raise ValueError(f"{BUILTIN[key]}.SPEC is registered as {spec.key!r}, expected {key!r}")
        return spec
    raise ConfigError(f"bad value for 'evaluation.models': unknown model {key!r}; registered: {registered()}")

"""Typed config of the factor-diagnostics section (``params.yaml`` key ``diagnostics``, issue 14; notebook 60).

It lives beside the section's code (:data:`riskstudy.config.SECTIONS`): changing it reruns only this
section's stage. The section reads what the scoring stages stored (exposures and score files), so it
retrains nothing.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from riskstudy.config import _Strict


def _distinct(v: list) -> list:
    if len(set(v)) != len(v):
        raise ValueError(f"entries must be distinct, got {v}")
    return v


class DiagnosticsConfig(_Strict):
    """Factor diagnostics of the Table-1 rows (:mod:`riskstudy.diagnostics.study`).

    ``rows`` are Table-1 rows (groups of the models in ``evaluation.models``; the first seed of a
    seeded row) whose factors are diagnosed over the test window: IC at each of ``horizons``
    (Spearman and Pearson, Newey-West t, IC information ratio), VIF, the t-statistic of factor
    returns, the paper's mean cross-sectional ``|t|`` and the explained-variance ratio.
    ``transform_rows`` are wrapped by the two transforms and re-scored through the one pipeline:
    Gram-Schmidt orthogonalisation (factor order ``gs_order``: as the model lists them, or by
    explained variance on the decision window) and adaptive selection (keep ``evr >= min_evr``,
    ``vif <= max_vif``, ``|t| > min_t``; the design document's 0.1, 5.0, 1.96), decided on the
    ``decide_on`` window only.
    """

    rows: list[str] = Field(default_factory=lambda: ["FRM", "SRM", "DRM", "DRM untrained", "DRM linear probe", "CAE", "IPCA"],
                            min_length=1)
    transform_rows: list[str] = Field(default_factory=lambda: ["FRM", "SRM", "DRM"])
    horizons: list[int] = Field(default_factory=lambda: [1, 20], min_length=1)  # days; the first is the headline "ic"
    gs_order: Literal["given", "evr"] = "given"
    min_evr: float = Field(0.1, ge=0, le=1)
    max_vif: float = Field(5.0, ge=1)
    min_t: float = Field(1.96, ge=0)
    # The stored DRM and CAE exposures start at split.valid_start (their training-window exposures would be
    # in-sample fits), so the default decides on the validation window: before the test window, out of every
    # network's training sample. "train" works for models whose exposures cover the training window.
    decide_on: Literal["train", "valid"] = "valid"
    min_stocks: int = Field(20, ge=3)  # days with fewer common stocks give no IC

    @field_validator("rows", "transform_rows", "horizons")
    @classmethod
    def _check_distinct(cls, v: list) -> list:
        return _distinct(v)

    @field_validator("horizons")
    @classmethod
    def _positive(cls, v: list[int]) -> list[int]:
        if any(h < 1 for h in v):
            raise ValueError(f"horizons must be >= 1 day, got {v}")
        return v

    @model_validator(mode="after")
    def _transforms_are_diagnosed(self) -> "DiagnosticsConfig":
        extra = [r for r in self.transform_rows if r not in self.rows]
        if extra:
            raise ValueError(f"transform_rows {extra} are not in rows {self.rows}")
        return self

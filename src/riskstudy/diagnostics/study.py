r"""Factor diagnostics of the Table-1 rows and the two transforms, re-scored through the one pipeline (notebook 60).

For one market (:func:`market_diagnostics`):

1. **Which exposures.** Each row of ``diagnostics.rows`` is a Table-1 row (a group of a model in
   ``evaluation.models``); its first run's exposures are read from where the scoring stage left
   them (the exposure store, or the DRM stage's files), so nothing is retrained here.
2. **Per-factor diagnostics over the test window** (the decision days of Table 1):
   IC with the next ``h`` days' returns for each ``h`` of ``diagnostics.horizons`` (Spearman and
   Pearson; mean, Newey-West t, IC information ratio; :func:`~riskstudy.diagnostics.measures.ic_table`),
   VIF, the t-statistic of factor returns, the paper's mean cross-sectional ``|t|`` and the
   explained-variance ratio, all through the harness's own regression of the returns of ``t + 1``
   on ``[country, sectors, X_t]`` (:func:`~riskstudy.diagnostics.quality.factor_quality`).
3. **Transforms** of each row of ``diagnostics.transform_rows``, scored by
   :func:`riskstudy.evaluation.pipeline.score_run` on the same days as Table 1 (R^2, GMV and GMV+
   volatility, bias statistic, QLIKE, test-window VIF and ``|t|``) beside the row's own scores:
   Gram-Schmidt orthogonalisation (:class:`~riskstudy.diagnostics.transforms.Orthogonalised`, in
   the regression's weights) and adaptive selection (:class:`~riskstudy.diagnostics.quality.Selected`,
   decided on the ``diagnostics.decide_on`` window only).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from riskstudy.config import ConfigError, Params
from riskstudy.data.market import MarketData
from riskstudy.diagnostics.config import DiagnosticsConfig
from riskstudy.diagnostics.measures import ic_table
from riskstudy.diagnostics.quality import Selected, factor_quality
from riskstudy.diagnostics.transforms import Orthogonalised
from riskstudy.evaluation.pipeline import RunScore, eval_window, exposures_path, load_scores, score_run, scores_path
from riskstudy.evaluation.registry import get
from riskstudy.evaluation.scoring import one_blas_thread
from riskstudy.factors.base import FactorModel, Run, StoredExposures
from riskstudy.risk.factor_model import size_and_weights

log = logging.getLogger(__name__)

#: Columns of a transform's row in :attr:`DiagnosticsReport.transforms`.
TRANSFORM_COLUMNS = ("n_factors", "r2", "gmv_vol", "gmv_long_vol", "bias_gmv", "qlike_gmv", "mean_vif", "mean_abs_t",
                     "pct_abs_t_gt_2", "evr_sum")
#: Variants of a transformed row, in display order.
VARIANTS = ("full", "gram_schmidt", "selected")


def section(params: Params) -> DiagnosticsConfig:
    """The ``diagnostics`` section of ``params``; :class:`ConfigError` when the profile has none."""
    if params.diagnostics is None:
        raise ConfigError("params.yaml has no 'diagnostics' section (notebook 60 needs one)")
    return params.diagnostics


@dataclass(frozen=True)
class DiagnosedRow:
    """A Table-1 row whose factors are diagnosed: its model key, its first run and that run's exposures."""

    row: str
    model: str
    run: Run
    exposures: StoredExposures


def diagnosed_rows(params: Params, market: str) -> list[DiagnosedRow]:
    """The rows of ``diagnostics.rows`` as stored exposures; unknown rows raise :class:`ConfigError` naming the key."""
    wanted = section(params).rows
    found: dict[str, tuple[str, Run]] = {}
    groups: list[str] = []
    for key in params.evaluation.models:
        for run in get(key).runs(params, market):
            if run.factor_model is None:
                continue  # dense estimators have no factors
            groups.append(run.group)
            if run.group in wanted and run.group not in found:
                found[run.group] = (key, run)
    missing = [r for r in wanted if r not in found]
    if missing:
        raise ConfigError(f"bad value for 'diagnostics.rows': {missing} are not factor-model rows of evaluation.models "
                          f"{list(params.evaluation.models)} (rows: {sorted(set(groups))})")
    return [DiagnosedRow(r, found[r][0], found[r][1], stored_exposures(params, market, *found[r])) for r in wanted]


def stored_exposures(params: Params, market: str, key: str, run: Run) -> StoredExposures:
    """The exposures a run was scored with: the run's own store (e.g. the DRM stage's), else the exposure store."""
    fm = run.factor_model()
    if isinstance(fm, StoredExposures):
        return fm
    path = exposures_path(params, market, key, run.label)
    if not path.is_file():
        raise FileNotFoundError(f"no stored exposures of {run.label!r} at {path}: run `dvc repro score_{key}@{market}`")
    with np.load(path) as z:
        names = [str(n) for n in z["names"]]
    return StoredExposures(path, names=names)


def decision_rows(md: MarketData, window: tuple) -> slice:
    """Panel rows of the days in ``window`` ``(start, end)`` (inclusive dates)."""
    return md.panel.date_slice(*window)


def table1_decisions(params: Params, md: MarketData) -> slice:
    """Panel rows of Table 1's decision days (:func:`~riskstudy.evaluation.pipeline.eval_window`)."""
    w = eval_window(params, md)
    days = w.rows.start + w.test
    return slice(int(days[0]), int(days[-1]) + 1)


def factor_table(md: MarketData, exposures: np.ndarray, names: list[str], *, decisions: slice,
                 horizons: list[int], min_stocks: int = 20) -> pd.DataFrame:
    """Per-factor diagnostics of ``exposures (T, N, K)`` over the decision days ``decisions`` (module docstring, step 2).

    Returns
    -------
    DataFrame
        Indexed by factor: ``ic``, ``ic_t``, ``icir`` (Spearman, first horizon), their ``_pearson`` and
        ``_<h>d`` variants, ``vif``, ``t``, ``evr``, ``mean_abs_t``, ``pct_abs_t_gt_2``, ``n_days``; the
        attribute ``attrs["evr_other"]`` is the country and sector share.
    """
    panel = md.panel
    ic = pd.DataFrame(ic_table(exposures, panel["ret"], names=names, mask=panel.member, horizons=horizons,
                               rows=decisions, min_stocks=min_stocks)).T
    q = quality_over(md, exposures, names, decisions=decisions)
    out = ic.join(q)
    out.attrs["evr_other"] = q.attrs["evr_other"]
    return out


def quality_over(md: MarketData, exposures: np.ndarray, names: list[str], *, decisions: slice) -> pd.DataFrame:
    """:func:`~riskstudy.diagnostics.quality.factor_quality` of the regressions of ``r_{t+1}`` on ``X_t``, ``t`` in ``decisions``."""
    regressions = slice(decisions.start + 1, min(decisions.stop + 1, md.panel.shape[0]))
    return factor_quality(md.panel, exposures, regressions, names=list(names))


def _transform_row(score: RunScore, quality: pd.DataFrame) -> dict:
    """A line of :attr:`DiagnosticsReport.transforms`: Table-1 and forecast scores, test-window factor quality."""
    return {
        "n_factors": int(len(quality)),
        **{k: score.table1[k] for k in ("r2", "gmv_vol", "gmv_long_vol")},
        "bias_gmv": score.forecast["bias_gmv"],
        "qlike_gmv": score.forecast["qlike_gmv"],
        "mean_vif": float(quality["vif"].mean()),
        "mean_abs_t": float(quality["mean_abs_t"].mean()),
        "pct_abs_t_gt_2": float(quality["pct_abs_t_gt_2"].mean()),
        "evr_sum": float(quality["evr"].sum()),
    }


@dataclass
class TransformResult:
    """The transforms of one row: the fitted wrappers, and per variant (:data:`VARIANTS`) its scores and its
    test-window factor quality (:func:`quality_over`)."""

    row: str
    orthogonalised: Orthogonalised
    selected: Selected
    scores: dict[str, RunScore]
    quality: dict[str, pd.DataFrame]

    def table(self) -> dict[tuple[str, str], dict]:
        return {(self.row, v): _transform_row(self.scores[v], self.quality[v]) for v in VARIANTS}


def transform_row(params: Params, market: str, md: MarketData, row: DiagnosedRow, *, decide: slice,
                  decisions: slice, full_quality: pd.DataFrame) -> TransformResult:
    """Gram-Schmidt and selection of one row, scored through the one pipeline beside the row's own scores.

    ``decide``: rows of the selection's decision window (reported; :class:`Selected` takes the split
    window ``diagnostics.decide_on`` from the pipeline's ``fit``); ``decisions``: the test decision days;
    ``full_quality``: the row's own :func:`quality_over` on them."""
    cfg = section(params)
    base = row.exposures
    full = next((s for s in load_scores(scores_path(params, market, row.model), model=row.model) if s.label == row.run.label),
                None)
    if full is None:
        raise FileNotFoundError(f"no score of {row.run.label!r} in {scores_path(params, market, row.model)}: "
                                f"run `dvc repro score_{row.model}@{market}`")
    order = None
    if cfg.gs_order == "evr":  # by explained variance on the decision window (never the test window)
        base.fit(md, train_rows=np.arange(decide.start, decide.stop))
        q = quality_over(md, base.full_exposures(md, rows=np.arange(decide.start, decide.stop)), base.names_, decisions=decide)
        order = list(np.argsort(-q.evr.to_numpy(), kind="stable"))
    _, w = size_and_weights(md.panel)
    ortho = Orthogonalised(base, order=order, weights=lambda md_, rows: w[rows])
    sel = Selected(base, min_evr=cfg.min_evr, max_vif=cfg.max_vif, min_t=cfg.min_t, decide_on=cfg.decide_on)
    window = eval_window(params, md)
    scores, quality = {"full": full}, {"full": full_quality}
    for variant, model, suffix in (("gram_schmidt", ortho, "Gram-Schmidt"), ("selected", sel, "selected")):
        run = Run(f"{row.row} ({suffix})", f"{row.row} ({suffix})", factor_model=lambda m=model: m)
        log.info("%s: scoring %s", market, run.label)
        scores[variant] = score_run(run, model=row.model, params=params, md=md, window=window, store=None)
        with one_blas_thread():
            expo = model.full_exposures(md, rows=np.arange(decisions.start, decisions.stop))
            quality[variant] = quality_over(md, expo, model.names_, decisions=decisions)
    return TransformResult(row.row, ortho, sel, scores, quality)


@dataclass
class DiagnosticsReport:
    """Everything notebook 60 shows for one market.

    Attributes
    ----------
    factors : dict str -> DataFrame
        :func:`factor_table` of every diagnosed row, in ``diagnostics.rows`` order.
    summary : DataFrame
        One line per row: K, mean ``|IC|``, share of factors with ``|ic_t| > 2``, mean VIF, share
        with VIF above ``diagnostics.max_vif``, mean ``|t|``, summed EVR (and the country/sector EVR).
    transforms : DataFrame
        Rows ``(row, variant)``: :data:`TRANSFORM_COLUMNS`.
    selection : dict
        Per transformed row: ``kept`` factors, the decision window and its per-factor ``evr``, ``vif``, ``t``.
    gs_order : dict
        Per transformed row: the orthogonalisation order (factor names).
    """

    market: str
    factors: dict[str, pd.DataFrame]
    summary: pd.DataFrame
    transforms: pd.DataFrame
    selection: dict
    gs_order: dict
    decision_window: tuple[str, str] = ("", "")
    test_window: tuple[str, str] = ("", "")
    results: list[TransformResult] = field(default_factory=list)

    def metrics(self) -> dict:
        """``{row: {factor: {"ic", "ic_t", "icir", "vif", "t", "evr", ...}}}`` plus ``"overview"`` (:attr:`summary`),
        ``"transforms"``, ``"selection"``, ``"orthogonalisation"`` and ``"windows"``."""
        out: dict = {row: t.to_dict(orient="index") for row, t in self.factors.items()}
        out["transforms"] = {row: {v: self.transforms.loc[(row, v)].to_dict() for v in VARIANTS}
                             for row in dict.fromkeys(self.transforms.index.get_level_values(0))}
        out["overview"] = self.summary.to_dict(orient="index")
        out["selection"] = self.selection
        out["orthogonalisation"] = {"order": self.gs_order}
        out["windows"] = {"test": list(self.test_window), "decision": list(self.decision_window)}
        return out


def summarise(factors: dict[str, pd.DataFrame], *, max_vif: float) -> pd.DataFrame:
    """One line per row of the per-factor tables (see :attr:`DiagnosticsReport.summary`)."""
    rows = {}
    for row, t in factors.items():
        rows[row] = {
            "K": int(len(t)),
            "mean_abs_ic": float(t["ic"].abs().mean()),
            "share_ic_t_gt_2": float((t["ic_t"].abs() > 2).mean()),
            "mean_vif": float(t["vif"].mean()),
            "share_vif_gt_max": float((t["vif"] > max_vif).mean()),
            "mean_abs_t": float(t["mean_abs_t"].mean()),
            "evr_sum": float(t["evr"].sum()),
            "evr_country_sectors": float(t.attrs.get("evr_other", np.nan)),
        }
    return pd.DataFrame(rows).T


def market_diagnostics(params: Params, md: MarketData, *, market: str) -> DiagnosticsReport:
    """Steps 1-3 of the module docstring for one market."""
    cfg = section(params)
    rows = diagnosed_rows(params, market)
    decisions = table1_decisions(params, md)
    factors: dict[str, pd.DataFrame] = {}
    with one_blas_thread():
        for r in rows:
            r.exposures.fit(md, train_rows=np.arange(0))
            log.info("%s: diagnosing %s (%d factors)", market, r.row, r.exposures.n_factors)
            factors[r.row] = factor_table(md, r.exposures.exposures_, r.exposures.names_, decisions=decisions,
                                          horizons=cfg.horizons, min_stocks=cfg.min_stocks)
    decide = decision_rows(md, params.split.window(cfg.decide_on))
    results = [transform_row(params, market, md, r, decide=decide, decisions=decisions, full_quality=factors[r.row])
               for r in rows if r.row in cfg.transform_rows]
    transforms = (pd.DataFrame({k: v for res in results for k, v in res.table().items()}).T if results
                  else pd.DataFrame(columns=list(TRANSFORM_COLUMNS)))
    selection = {res.row: {"kept": list(res.selected.names_), "passed": list(res.selected.passed_),
                           "decision": res.selected.quality_[["evr", "vif", "t"]].to_dict(orient="index")}
                 for res in results}
    gs_order = {res.row: [res.selected.base.names_[k] for k in res.orthogonalised.order_] for res in results}
    dates = md.panel.dates
    return DiagnosticsReport(
        market, factors, summarise(factors, max_vif=cfg.max_vif), transforms, selection, gs_order,
        decision_window=(str(dates[decide.start].date()), str(dates[decide.stop - 1].date())),
        test_window=(str(dates[decisions.start].date()), str(dates[decisions.stop - 1].date())),
        results=results,
    )


def findings(report: DiagnosticsReport) -> list[str]:
    """Plain sentences computed from the report's numbers (what the notebook and SUMMARY.md say)."""
    s, t = report.summary, report.transforms
    out = []
    best = s["mean_abs_ic"].astype(float).idxmax()
    out.append(f"Largest mean |IC| with next-day returns: {best} ({s.loc[best, 'mean_abs_ic']:.3f}); "
               + ", ".join(f"{r} {v:.3f}" for r, v in s["mean_abs_ic"].items() if r != best) + ".")
    collinear = [f"{r} ({v:.0%} of factors, mean VIF {s.loc[r, 'mean_vif']:.1f})" for r, v in s["share_vif_gt_max"].items()
                 if v > 0]
    out.append("Factors with VIF above the maximum: " + (", ".join(collinear) if collinear else "none") + ".")
    for row in dict.fromkeys(t.index.get_level_values(0)):
        f, g, sel = t.loc[(row, "full")], t.loc[(row, "gram_schmidt")], t.loc[(row, "selected")]
        out.append(
            f"{row}: Gram-Schmidt keeps R^2 at {100 * g.r2:.2f}% (full {100 * f.r2:.2f}%) and takes the mean VIF from "
            f"{f.mean_vif:.2f} to {g.mean_vif:.2f}; GMV volatility {100 * f.gmv_vol:.2f}% -> {100 * g.gmv_vol:.2f}%, "
            f"GMV+ {100 * f.gmv_long_vol:.2f}% -> {100 * g.gmv_long_vol:.2f}%. Selection keeps {int(sel.n_factors)} of "
            f"{int(f.n_factors)} factors ({', '.join(report.selection[row]['kept'])}"
            f"{'' if report.selection[row]['passed'] else '; none passes all three rules: the largest EVR is kept'}"
            f"): R^2 {100 * sel.r2:.2f}%, GMV "
            f"{100 * sel.gmv_vol:.2f}%, GMV+ {100 * sel.gmv_long_vol:.2f}%.")
    return out

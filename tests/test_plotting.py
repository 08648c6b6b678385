"""Figures: the learning curves start at the untrained network and show every run."""

import numpy as np
import pandas as pd

from riskstudy import plotting


def test_learning_curves_start_at_the_untrained_score_and_draw_every_run():
    rows, summary = [], []
    for k in (10, 20):
        for seed in (0, 1):
            for variant in ("network", "linear probe"):
                summary.append({"k": k, "seed": seed, "variant": variant, "valid_r2_init": 0.30 + seed / 100})
                rows += [{"k": k, "seed": seed, "variant": variant, "steps": 46 * e, "valid_r2": 0.30 + e / 100}
                         for e in (1, 2, 3)]
    fig = plotting.learning_curves(pd.DataFrame(rows), pd.DataFrame(summary), title="t")
    assert len(fig.axes) == 2
    curves = [ln for ln in fig.axes[0].get_lines() if len(ln.get_xdata()) == 4]  # the dashed controls have 2 points
    assert len(curves) == 4  # 2 seeds x (network, probe)
    x, y = curves[1].get_xdata(), curves[1].get_ydata()
    assert x[0] == 0 and np.isclose(y[0], 30.0) and list(x[1:]) == [46, 92, 138]


def test_r2_by_k_draws_one_line_per_model_and_a_seed_band():
    import pandas as pd

    from riskstudy import plotting

    frame = pd.DataFrame({"model": ["CA1", "CA1", "IPCA", "IPCA"], "K": [1, 2, 1, 2], "r2_total": [0.1, 0.2, 0.1, 0.15],
                          "r2_pred": [0.0, 0.01, 0.0, 0.0], "r2_total_min": [0.05, 0.15, None, None],
                          "r2_total_max": [0.12, 0.22, None, None], "r2_pred_min": [None] * 4, "r2_pred_max": [None] * 4})
    fig = plotting.r2_by_k(frame, title="t")
    assert len(fig.axes) == 2 and [len(ax.lines) for ax in fig.axes] == [3, 3]  # two models + the zero line
    assert len(fig.axes[0].collections) == 1 and len(fig.axes[1].collections) == 0  # CA1's band where seeds exist

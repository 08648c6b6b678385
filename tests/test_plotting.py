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

"""Numbers reported by the Deep Risk Model paper (CSI300, test 2017-01 .. 2020-02), as fractions,
set beside ours in the notebooks. Quoted from the paper's Tables 1 and 3 and section 5.4."""

from __future__ import annotations

import pandas as pd

TABLE1 = pd.DataFrame(
    {
        "r2": {"Market": None, "FRM": 0.298, "SRM": 0.301, "SRM x2": 0.307, "DRM": 0.304, "DRM x2": 0.317},
        "gmv_vol": {"Market": 0.184, "FRM": 0.126, "SRM": 0.186, "SRM x2": 0.165, "DRM": 0.123, "DRM x2": 0.116},
        "gmv_long_vol": {"Market": 0.184, "FRM": 0.129, "SRM": 0.135, "SRM x2": 0.162, "DRM": 0.129, "DRM x2": 0.123},
    }
)

# Table 3 (RQ1): mean test R^2 with / without the GAT branch by number of factors K
TABLE3 = pd.DataFrame(
    {
        "with": {10: 0.304, 12: 0.306, 14: 0.308, 16: 0.311, 18: 0.314, 20: 0.317},
        "without": {10: 0.303, 12: 0.305, 14: 0.309, 16: 0.311, 18: 0.313, 20: 0.315},
    }
)

CLAIMS = {
    "rq2": "VIF falls as lambda grows and exceeds 5 at lambda = 1e-3",
    "rq3": "multi-task (H = 20) exposures have a higher and steadier lag-1 autocorrelation than single-task (H = 1)",
}

"""CAE and IPCA as harness factor models: the FactorModel contract (shape, names, NaN off-universe), betas held
from each month end, no look-ahead (prices after day t leave the exposures of t unchanged), the seed runs."""

from __future__ import annotations

import numpy as np
import pytest

from riskstudy.cae.factor_model import CAEFactorModel, IPCAFactorModel, SPEC, held_exposures, label_periods
from riskstudy.cae.ipca import IPCA
from riskstudy.cae.config import CAEConfig
from riskstudy.data.market import MarketData
from riskstudy.data.synthetic import make_synthetic_market
from riskstudy.factors.base import FactorModel

CONFIG = CAEConfig(n_seeds=2, max_epochs=2, patience=2, batch_periods=4, lr=0.01, device="cpu", beta_window=42,
                   idio_window=42)
TRAIN, VALID = np.arange(0, 300), np.arange(300, 400)


@pytest.fixture(scope="module")
def md():
    return make_synthetic_market(n_days=520, n_stocks=30, n_factors=2, n_sectors=2, seed=4).market_data()


def _models():  # 25 months: mom36m never exists, so every period is incomplete under the default max_missing
    kw = {"n_factors": 2, "config": CONFIG, "max_missing": None}
    return {"cae": CAEFactorModel(**kw), "ipca": IPCAFactorModel(**kw),
            "cae aligned": CAEFactorModel(**kw, model="CA0", ensemble="aligned")}


def test_incomplete_periods_are_not_fitted(md):
    with pytest.raises(ValueError, match="no training period"):
        IPCAFactorModel(n_factors=2, config=CONFIG).fit(md, train_rows=TRAIN)


@pytest.fixture(scope="module")
def fitted(md):
    return {k: m.fit(md, train_rows=TRAIN, valid_rows=VALID) for k, m in _models().items()}


def _changed_after(md: MarketData, t: int) -> MarketData:
    p = md.panel
    rng = np.random.default_rng(7)
    fields = {k: v.copy() for k, v in p.fields.items()}
    shock = np.exp(0.05 * rng.standard_normal(fields["close"][t + 1:].shape))
    for k in ("open", "high", "low", "close"):
        fields[k][t + 1:] *= shock
    fields["ret"][t + 1:] = 0.05 * rng.standard_normal(fields["ret"][t + 1:].shape)
    fields["volume"][t + 1:] *= 3.0
    fields["dollar_volume"][t + 1:] *= 3.0
    panel = type(p)(market=p.market, dates=p.dates, instruments=p.instruments, fields=fields, member=p.member,
                    sector=p.sector)
    return MarketData(panel, md.benchmark, md.benchmark_name)


def test_label_periods_keep_whole_labels_inside(md, fitted):
    ch = fitted["ipca"].characteristics(md)
    j = label_periods(ch, TRAIN)
    assert (ch.rows[j] >= 0).all() and (ch.rows[j + 1] <= TRAIN.max()).all()
    assert ch.rows[j.max() + 2] > TRAIN.max()  # the next period's label straddles the end
    c = fitted["cae"]
    assert c.valid_.min() > c.train_.max() and (ch.rows[c.valid_ + 1] <= VALID.max()).all()


@pytest.mark.filterwarnings("ignore:All-NaN slice")
@pytest.mark.parametrize("name", ["cae", "ipca", "cae aligned"])
def test_contract(md, fitted, name):
    m = fitted[name]
    assert isinstance(m, FactorModel) and m.n_factors == 2 and len(m.names_) == 2
    rows = np.arange(380, 520)
    x = m.exposures(md, rows=rows)
    assert x.shape == (len(rows), 30, 2)
    member = md.panel.member[rows]
    assert np.isnan(x[~member]).all()
    ch = m.characteristics(md)
    j = np.searchsorted(ch.rows, rows, side="right") - 1
    have = member & ch.member[j]
    assert np.isfinite(x[have]).all() and np.isnan(x[~have]).all()
    for a in np.unique(j):  # held: one value per stock from its period end on
        block = x[j == a]
        seen = np.isfinite(block).any(0)
        np.testing.assert_array_equal(np.nanmax(block, 0)[seen], np.nanmin(block, 0)[seen])
    assert (rows[j == j[0]] >= ch.rows[j[0]]).all()  # betas of e_j start at e_j itself
    early = m.exposures(md, rows=np.arange(0, 15))  # before the first month end
    assert np.isnan(early).all()


def test_ipca_exposures_are_its_betas(md, fitted):
    m = fitted["ipca"]
    ch = m.characteristics(md)
    ref = IPCA(n_factors=2, max_iter=CONFIG.ipca_max_iter, tol=CONFIG.ipca_tol).fit(ch, train=m.train_)
    np.testing.assert_allclose(m.ipca_.gamma_, ref.gamma_, atol=1e-10)
    rows = np.arange(400, 520)
    x = m.exposures(md, rows=rows)
    j = np.searchsorted(ch.rows, rows, side="right") - 1
    np.testing.assert_allclose(x, held_exposures(ref.betas(ch, np.arange(len(ch.rows))), ch, md.panel.member, rows))
    assert j.min() >= 0


@pytest.mark.parametrize("name", ["cae", "ipca", "cae aligned"])
def test_no_look_ahead_in_exposures(md, fitted, name):
    t = 457  # mid-month
    rows = np.arange(400, 520)
    before = fitted[name].exposures(md, rows=rows)
    after = fitted[name].exposures(_changed_after(md, t), rows=rows)
    keep = rows <= t
    np.testing.assert_array_equal(before[keep], after[keep])
    assert not np.allclose(np.nan_to_num(before[~keep]), np.nan_to_num(after[~keep]))


def test_fit_reads_only_its_rows(md, fitted):
    other = _changed_after(md, VALID.max())  # everything after the validation window changed
    rows = np.arange(380, 400)
    for name, m in _models().items():
        m.fit(other, train_rows=TRAIN, valid_rows=VALID)
        np.testing.assert_allclose(m.exposures(other, rows=rows), fitted[name].exposures(md, rows=rows), rtol=1e-6)


def test_spec_runs_are_seeds(md):
    class P:  # the part of Params the runs read (China: no Fama-French file needed)
        cae = CONFIG

    runs = SPEC.runs(P(), "cn")
    assert [r.label for r in runs] == ["CAE s0", "CAE s1", "IPCA"]
    assert {r.group for r in runs} == {"CAE", "IPCA"} and [r.seed for r in runs[:2]] == [0, 1]
    m = runs[1].factor_model()
    assert isinstance(m, CAEFactorModel) and m.seed == 1 and m.k == max(CONFIG.ks) and m.model == "CA1"

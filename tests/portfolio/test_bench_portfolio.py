from riskstudy.bench_portfolio import main


def test_bench_portfolio_small(capsys):
    res = main(["--n", "40", "--p", "4", "--days", "3"])
    assert res["max_abs_weight_diff"] < 1e-4
    assert res["factor_solves_per_s"] > 0 and res["dense_solves_per_s"] > 0
    assert "solves/s" in capsys.readouterr().out

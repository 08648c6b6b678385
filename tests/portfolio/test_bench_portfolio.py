from riskstudy.bench_portfolio import main


def test_bench_portfolio_small(capsys):
    res = main(["--n", "40", "--p", "4", "--days", "4", "--absent", "0.1"])
    assert res["max_abs_weight_diff"] < 1e-4
    assert res["n_compiles"] == 1 and res["n_assets_max"] <= 40  # one compilation for the universe
    assert res["factor_solves_per_s"] > 0 and res["dense_solves_per_s"] > 0
    assert "solves/s" in capsys.readouterr().out

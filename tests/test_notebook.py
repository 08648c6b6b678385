"""Tests for riskstudy.notebook: the papermill + HTML runner of the DVC stages."""

import json

import nbformat
import pytest

from riskstudy.notebook import main, parse_value


@pytest.mark.parametrize(("text", "value"), [("us", "us"), ("3", 3), ("0.5", 0.5), ("True", True), ("None", None),
                                             ("params.yaml", "params.yaml")])
def test_parameter_values_are_typed_like_papermill(text, value):
    assert parse_value(text) == value and type(parse_value(text)) is type(value)


def test_runs_with_injected_parameters_and_renders_html(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell('market = "us"\nn = 1', metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell("print(market * n)")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    src, out = tmp_path / "nb.ipynb", tmp_path / "out" / "nb_cn.ipynb"
    nbformat.write(nb, src)
    main([str(src), str(out), "-p", "market", "cn", "-p", "n", "2"])
    done = json.loads(out.read_text())
    assert "".join(done["cells"][-1]["outputs"][0]["text"]) == "cncn\n"  # injected after the parameters cell
    assert "cncn" in out.with_suffix(".html").read_text()


def test_a_failing_cell_ends_with_one_readable_block(tmp_path, capsys):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell('k = 1', metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell("x = 2\nraise ValueError(f'drm.n_factors={k} is too large')")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    src, out = tmp_path / "nb.ipynb", tmp_path / "nb_out.ipynb"
    nbformat.write(nb, src)
    with pytest.raises(SystemExit) as exit_info:
        main([str(src), str(out), "-p", "k", "30"])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"stage failed: {src} (k=30)")
    assert "ValueError: drm.n_factors=30 is too large" in err
    assert "raise ValueError" in err and f"full traceback: {out}" in err
    assert "Traceback" not in err and len(err.splitlines()) <= 12  # no papermill traceback
    assert "Traceback" in out.read_text() or "ValueError" in out.read_text()  # kept in the executed notebook


def test_widget_state_and_views_are_dropped_from_executed_notebooks():
    import nbformat

    from riskstudy.notebook import WIDGET_VIEW, drop_widget_state

    nb = nbformat.v4.new_notebook()
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {"x": {}}}}
    cell = nbformat.v4.new_code_cell("x = 1")
    cell.outputs = [nbformat.v4.new_output("display_data", data={WIDGET_VIEW: {"model_id": "x"}, "text/plain": "0/7"}),
                    nbformat.v4.new_output("stream", name="stdout", text="kept\n")]
    nb.cells = [nbformat.v4.new_markdown_cell("t"), cell]
    assert drop_widget_state(nb) == 1
    assert "widgets" not in nb.metadata and [o.output_type for o in nb.cells[1].outputs] == ["stream"]

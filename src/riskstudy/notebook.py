"""Execute a study notebook with papermill and render it to HTML, in one process.

``python -m riskstudy.notebook notebooks/10_data.ipynb reports/notebooks/10_data_us.ipynb -p market us -p params_file params.yaml``

is ``papermill IN OUT -k python3 -p market us -p params_file params.yaml`` followed by
``jupyter nbconvert --to html OUT``: the parameters are injected after the cell tagged
``parameters`` and the HTML lands next to the executed notebook (same stem). One process
instead of two saves the second interpreter start and the second import of the Jupyter stack
(about 4-5 s per stage on 2 cores, a third of a smoke-profile stage), which every DVC stage
pays.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

logger = logging.getLogger(__name__)


def parse_value(text: str) -> object:
    """A ``-p`` value as papermill reads it: ``True``/``False``/``None``, int, float, else the string."""
    special = {"True": True, "False": False, "None": None}
    if text in special:
        return special[text]
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


class StageError(RuntimeError):
    """A notebook stage failed; the message is the short report :func:`main` prints."""


def failure_report(error: Exception, *, source: str | Path, output: str | Path, parameters: dict[str, object]) -> str:
    """One readable block for a failed notebook: which notebook and cell, and the exception's own message.

    ``error`` is papermill's ``PapermillExecutionError`` (it carries the cell index, source, exception
    name and value); the full traceback stays in the executed notebook ``output``.
    """
    cell = getattr(error, "exec_count", None)
    src = (getattr(error, "source", "") or "").strip().splitlines()
    ename, evalue = getattr(error, "ename", type(error).__name__), getattr(error, "evalue", str(error))
    params = " ".join(f"{k}={v}" for k, v in parameters.items())
    lines = [f"stage failed: {source}" + (f" ({params})" if params else "")]
    if cell is not None:
        lines.append(f"  in cell [{cell}] (code cell {getattr(error, 'cell_index', '?')}):")
        lines += [f"    {line}" for line in src[:6]] + (["    ..."] if len(src) > 6 else [])
    lines.append(f"  {ename}: {evalue}")
    lines.append(f"  full traceback: {output}")
    return "\n".join(lines)


WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def drop_widget_state(nb) -> int:
    """Remove ipywidgets state and views (``tqdm.auto`` progress bars) from an executed notebook; returns the
    number of outputs dropped. They are live-kernel artefacts, empty in a static render, and a training loop's
    per-epoch bars grow a notebook to hundreds of MB."""
    nb.metadata.pop("widgets", None)
    dropped = 0
    for cell in nb.cells:
        if cell.get("cell_type") != "code":
            continue
        kept = [o for o in cell.get("outputs", []) if WIDGET_VIEW not in o.get("data", {})]
        dropped += len(cell.get("outputs", [])) - len(kept)
        cell["outputs"] = kept
    return dropped


def run_notebook(source: str | Path, output: str | Path, *, parameters: dict[str, object],
                 kernel: str = "python3", html: bool = True) -> Path | None:
    """Execute ``source`` into ``output`` with ``parameters``; render ``output`` as HTML.

    Parameters
    ----------
    source, output : path
        Notebook to run and executed copy to write (its folder is created).
    parameters : dict
        Injected after the ``parameters`` cell.
    kernel : str
        Jupyter kernel name.
    html : bool
        Also write ``output`` with suffix ``.html``.

    Returns
    -------
    pathlib.Path or None
        The HTML file, if written.

    Raises
    ------
    StageError
        A cell raised: the message names the notebook, the cell and the exception (:func:`failure_report`).
    """
    import nbformat
    import papermill
    from nbconvert import HTMLExporter

    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    logger.info("executing %s -> %s with %s", source, output, parameters)
    try:
        papermill.execute_notebook(str(source), str(output), parameters=parameters, kernel_name=kernel,
                                   progress_bar=False, log_output=False)
    except papermill.PapermillExecutionError as err:
        raise StageError(failure_report(err, source=source, output=output, parameters=parameters)) from err
    nb = nbformat.read(output, as_version=4)
    had_state = "widgets" in nb.metadata
    if drop_widget_state(nb) or had_state:
        nbformat.write(nb, output)
    if not html:
        return None
    body, _ = HTMLExporter().from_notebook_node(nb)
    out_html = output.with_suffix(".html")
    out_html.write_text(body, encoding="utf-8")
    return out_html


def main(argv: Sequence[str] | None = None) -> None:
    """CLI (see module docstring)."""
    p = argparse.ArgumentParser(prog="python -m riskstudy.notebook", description=__doc__.splitlines()[0])
    p.add_argument("source")
    p.add_argument("output")
    p.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"))
    p.add_argument("-k", "--kernel", default="python3")
    p.add_argument("--no-html", action="store_true")
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        run_notebook(a.source, a.output, parameters={k: parse_value(v) for k, v in a.parameter},
                     kernel=a.kernel, html=not a.no_html)
    except StageError as err:
        print(f"\n{err}\n", file=sys.stderr)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()

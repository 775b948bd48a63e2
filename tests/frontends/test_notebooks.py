"""Notebooks run headless on kernelkit kernels: nbclient, ``jupyter nbconvert --execute`` and papermill.

Each runner executes the same notebook; the outputs saved in the notebook must be exactly the
ones the kernel sent (stream text, execute_result with its count, display_data bundles byte for
byte, the error with ``allow_errors``).
"""

from __future__ import annotations

import base64
import subprocess
import sys
from pathlib import Path
from typing import Any

import nbformat
import pytest
from frontend_kit import EXAMPLES, FRONTEND_KERNELS, SHOWCASE, kernel_ids
from nbclient import NotebookClient

sys.path.insert(0, str(EXAMPLES))
from showcase import html_table, make_png  # noqa: E402

pytestmark = pytest.mark.slow  # more than ~3 s a test: nbconvert/papermill subprocesses, several seconds a notebook

RUN_TIMEOUT = 120  # seconds for a whole notebook run in a subprocess


def sample_notebook(kernel) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": kernel.name, "display_name": kernel.display_name,
                                 "language": "python" if kernel.python else "text"}
    nb.cells = [nbformat.v4.new_code_cell(kernel.sample_code)]
    return nb


ERROR_CELLS = (5, 7)  # indices of the cells that raise


def showcase_notebook(*, errors: bool = True) -> nbformat.NotebookNode:
    """Every kind of output; ``errors=False`` leaves out the two cells that raise (for papermill)."""
    nb = sample_notebook(SHOWCASE)
    cells = [
        "n = 2",
        "print('stdout line')\nimport sys; print('stderr line', file=sys.stderr)",
        "6 * n",
        "table([[1, 'one'], [2, 'two']], header=['n', 'name'])",
        "png()",
        "1 / 0",
        "print('after the error')",
        "input('name? ')",  # headless runners offer no stdin: a clear error, not a hang
    ]
    nb.cells = [nbformat.v4.new_code_cell(code) for i, code in enumerate(cells) if errors or i not in ERROR_CELLS]
    nb.cells[0].metadata["tags"] = ["parameters"]
    return nb


def outputs(nb: nbformat.NotebookNode) -> list[list[dict[str, Any]]]:
    """Each code cell's outputs as plain dicts, without tracebacks (checked separately)."""
    return [[{k: v for k, v in out.items() if k != "traceback"} for out in cell.get("outputs", [])]
            for cell in nb.cells]


def expected_showcase_outputs(n: int, *, errors: bool = True) -> list[list[dict[str, Any]]]:
    png = base64.b64encode(make_png()).decode("ascii")
    expected = [
        [],
        [{"output_type": "stream", "name": "stdout", "text": "stdout line\n"},
         {"output_type": "stream", "name": "stderr", "text": "stderr line\n"}],
        [{"output_type": "execute_result", "execution_count": 3, "data": {"text/plain": str(6 * n)}, "metadata": {}}],
        [{"output_type": "display_data", "metadata": {},
          "data": {"text/html": html_table([[1, "one"], [2, "two"]], ["n", "name"]),
                   "text/plain": "n\tname\n1\tone\n2\ttwo"}}],
        [{"output_type": "display_data", "metadata": {"image/png": {"width": 96, "height": 64}},
          "data": {"image/png": png, "text/plain": "<PNG image 96x64>"}}],
        [{"output_type": "error", "ename": "ZeroDivisionError", "evalue": "division by zero"}],
        [{"output_type": "stream", "name": "stdout", "text": "after the error\n"}],
        [{"output_type": "error", "ename": "StdinNotImplementedError",
          "evalue": "input was requested, but this frontend does not support input requests (allow_stdin is false)"}],
    ]
    return expected if errors else [out for i, out in enumerate(expected) if i not in ERROR_CELLS]


def check_showcase(nb: nbformat.NotebookNode, n: int = 2) -> None:
    assert outputs(nb) == expected_showcase_outputs(n)
    traceback = "\n".join(nb.cells[5].outputs[0].traceback)
    assert "ZeroDivisionError" in traceback and "<cell-6>" in traceback
    assert [c.execution_count for c in nb.cells] == list(range(1, 9))


def run_nbclient(nb: nbformat.NotebookNode, kernel_name: str) -> nbformat.NotebookNode:
    client = NotebookClient(nb, kernel_name=kernel_name, timeout=60, startup_timeout=60, allow_errors=True)
    client.execute()
    return nb


def run_nbconvert(nb: nbformat.NotebookNode, tmp_path: Path, kernel_name: str) -> nbformat.NotebookNode:
    source = tmp_path / "in.ipynb"
    nbformat.write(nb, source)
    subprocess.run(
        [sys.executable, "-m", "jupyter", "nbconvert", "--to", "notebook", "--execute", "--allow-errors",
         f"--ExecutePreprocessor.kernel_name={kernel_name}", "--ExecutePreprocessor.timeout=60",
         "--output", "out.ipynb", str(source)],
        check=True, cwd=tmp_path, timeout=RUN_TIMEOUT, capture_output=True,
    )
    return nbformat.read(tmp_path / "out.ipynb", as_version=4)


def run_papermill(nb: nbformat.NotebookNode, tmp_path: Path, kernel_name: str, *params: str) -> nbformat.NotebookNode:
    source = tmp_path / "in.ipynb"
    nbformat.write(nb, source)
    result = subprocess.run(
        [sys.executable, "-m", "papermill", str(source), str(tmp_path / "out.ipynb"), "-k", kernel_name,
         "--no-progress-bar", "--log-level", "WARNING", *params],
        cwd=tmp_path, timeout=RUN_TIMEOUT, capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return nbformat.read(tmp_path / "out.ipynb", as_version=4)


RUNNERS = ["nbclient", "nbconvert", "papermill"]


def run(runner: str, nb: nbformat.NotebookNode, tmp_path: Path, kernel_name: str) -> nbformat.NotebookNode:
    if runner == "nbclient":
        return run_nbclient(nb, kernel_name)
    if runner == "nbconvert":
        return run_nbconvert(nb, tmp_path, kernel_name)
    return run_papermill(nb, tmp_path, kernel_name)


@pytest.mark.parametrize("runner", RUNNERS)
@pytest.mark.parametrize("kernel", FRONTEND_KERNELS, ids=kernel_ids(FRONTEND_KERNELS))
def test_sample_cell(runner: str, kernel, tmp_path: Path) -> None:
    nb = run(runner, sample_notebook(kernel), tmp_path, kernel.name)
    assert outputs(nb) == [[{"output_type": "stream", "name": "stdout", "text": kernel.sample_output}]]
    assert nb.cells[0].execution_count == 1


@pytest.mark.parametrize("runner", ["nbclient", "nbconvert"])
def test_showcase_outputs_saved_exactly(runner: str, tmp_path: Path) -> None:
    nb = run(runner, showcase_notebook(), tmp_path, SHOWCASE.name)
    check_showcase(nb)


def test_showcase_papermill_parameters(tmp_path: Path) -> None:
    """papermill injects a parameters cell after the tagged one; the outputs use the new value."""
    nb = run_papermill(showcase_notebook(errors=False), tmp_path, SHOWCASE.name, "-p", "n", "7")
    injected = [i for i, c in enumerate(nb.cells) if "injected-parameters" in c.metadata.get("tags", [])]
    assert injected == [1]
    assert nb.cells[1].source.strip().endswith("n = 7")
    assert [c.execution_count for c in nb.cells] == list(range(1, 8))
    del nb.cells[1]  # compare the rest with the unparametrised run
    expected = expected_showcase_outputs(7, errors=False)
    expected[2][0]["execution_count"] = 4  # the injected cell ran second
    assert outputs(nb) == expected
    assert nb.metadata.papermill.parameters == {"n": 7}
    assert not nb.metadata.papermill.exception


def test_showcase_papermill_error(tmp_path: Path) -> None:
    """A cell error makes papermill fail (exit 1) naming it, with the outputs so far saved."""
    source = tmp_path / "in.ipynb"
    nbformat.write(showcase_notebook(), source)
    result = subprocess.run(
        [sys.executable, "-m", "papermill", str(source), str(tmp_path / "out.ipynb"), "-k", SHOWCASE.name,
         "--no-progress-bar", "--log-level", "WARNING"],
        cwd=tmp_path, timeout=RUN_TIMEOUT, capture_output=True, text=True,
    )
    assert result.returncode == 1
    assert "PapermillExecutionError" in result.stderr and "ZeroDivisionError: division by zero" in result.stderr
    nb = nbformat.read(tmp_path / "out.ipynb", as_version=4)
    code_cells = [c for c in nb.cells if c.cell_type == "code"]
    assert outputs(nbformat.v4.new_notebook(cells=code_cells)) == (
        expected_showcase_outputs(2)[:6] + [[], []])  # papermill stops at the first error
    assert nb.metadata.papermill.exception is True


def test_error_stops_nbclient_without_allow_errors() -> None:
    """Without allow_errors the run stops at the failing cell with CellExecutionError, as with ipykernel."""
    from nbclient.exceptions import CellExecutionError

    nb = showcase_notebook()
    client = NotebookClient(nb, kernel_name=SHOWCASE.name, timeout=60, startup_timeout=60)
    with pytest.raises(CellExecutionError, match="ZeroDivisionError"):
        client.execute()
    assert nb.cells[6].get("outputs") == []  # the cell after the error never ran

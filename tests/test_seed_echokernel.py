"""The seed article's EchoKernel runs on kernelkit with only its import and launch lines changed."""

from __future__ import annotations

import sys

import nbclient
import nbformat
import pytest

from conftest import REPO_DIR, install_kernelspec
from helpers import execute, running_kernel, seed_echokernel_source, stdout_text

EXAMPLE = REPO_DIR / "examples" / "echokernel.py"
KERNEL_NAME = "kk-seed-echo"

SEED_IMPORT = "from ipykernel.kernelbase import Kernel\n"
SEED_LAUNCH = "    from ipykernel.kernelapp import IPKernelApp\n    IPKernelApp.launch_instance(kernel_class=EchoKernel)\n"


@pytest.fixture(scope="module", autouse=True)
def seed_kernelspec():
    install_kernelspec(
        KERNEL_NAME,
        argv=[sys.executable, str(EXAMPLE), "-f", "{connection_file}"],
        display_name="Echo",
    )


def test_example_is_the_seed_with_only_import_and_launch_changed() -> None:
    seed = seed_echokernel_source()
    assert seed.count(SEED_IMPORT) == 1 and seed.count(SEED_LAUNCH) == 1
    expected = seed.replace(SEED_IMPORT, "from kernelkit import Kernel\n").replace(SEED_LAUNCH, "    EchoKernel.launch()\n")
    assert EXAMPLE.read_text(encoding="utf-8") == expected


def test_seed_echokernel_through_jupyter_client() -> None:
    with running_kernel(KERNEL_NAME) as (km, kc):
        reply, msgs = execute(kc, "hello from the seed")
        assert reply["content"]["status"] == "ok"
        assert reply["content"]["execution_count"] == 1
        assert stdout_text(msgs) == "hello from the seed"
        reply, msgs = execute(kc, "quiet", silent=True)
        assert stdout_text(msgs) == ""
        kc.kernel_info()
        info = kc.get_shell_msg(timeout=20)["content"]
        assert info["implementation"] == "Echo"
        assert info["language_info"]["name"] == "Any text"
        assert info["banner"] == "Echo kernel - as useful as a parrot"


def test_seed_echokernel_through_nbclient() -> None:
    cells = ["first cell", "second\ncell ✓"]
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source) for source in cells]
    client = nbclient.NotebookClient(nb, kernel_name=KERNEL_NAME, timeout=30, startup_timeout=60)
    client.execute()
    for index, (cell, source) in enumerate(zip(nb.cells, cells), start=1):
        assert cell.execution_count == index
        assert [dict(o) for o in cell.outputs] == [{"output_type": "stream", "name": "stdout", "text": source}]
    nbformat.validate(nb)

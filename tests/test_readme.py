"""The README's example kernel works as the README says, in a terminal too."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from conftest import REPO_DIR, install_kernelspec


def readme_block(marker: str) -> str:
    """The README's ```python block that contains ``marker``."""
    text = (REPO_DIR / "README.md").read_text(encoding="utf-8")
    blocks = [b.split("```", 1)[0] for b in text.split("```python\n")[1:]]
    found = [b for b in blocks if marker in b]
    assert len(found) == 1, f"expected one README python block with {marker!r}, found {len(found)}"
    return found[0]


def test_readme_example_kernel_shows_its_rich_output_in_a_terminal(tmp_path: Path) -> None:
    source = tmp_path / "mykernel.py"
    source.write_text(readme_block("class ShoutKernel(Kernel)"), encoding="utf-8")
    install_kernelspec("kk-readme-shout", argv=[sys.executable, str(source), "-f", "{connection_file}"])
    done = subprocess.run([sys.executable, "-m", "kernelkit", "exec", "kk-readme-shout", "hello"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "HELLO\nhello\n"  # the stream, then the display's text/plain
    assert "not shown in a terminal" not in done.stderr

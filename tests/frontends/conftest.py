"""Fixtures for the frontend tests; the shared code is in frontend_kit.py.

``tests/conftest.py`` has already pointed every Jupyter folder at a temporary directory (at
import time), so the servers, consoles and kernels started here never touch the real home.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from frontend_kit import artifact_path, install_kernelspecs

install_kernelspecs()


@pytest.fixture
def artifacts(request: pytest.FixtureRequest) -> Callable[[str], Path]:
    """``artifacts("name.png")`` → a path under test-artifacts/<test module>/ to save things to."""
    module = Path(request.node.fspath).stem

    def make(name: str) -> Path:
        return artifact_path(module, name)

    return make

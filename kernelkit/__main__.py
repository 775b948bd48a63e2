"""``python -m kernelkit``: the same as the ``kernelkit`` command.

Kernelspecs written by kernelkit before 0.2 start kernels as ``python -m kernelkit run``; the
current folder (first on ``sys.path`` under ``-m``) is removed before the CLI is imported,
for the reason given in ``kernelkit_launcher``.
"""

import os
import sys

if __name__ == "__main__":
    if sys.path and sys.path[0] in ("", os.getcwd()):
        del sys.path[0]
    from kernelkit.cli import main

    main()

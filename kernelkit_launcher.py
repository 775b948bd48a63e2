"""The entry point installed kernelspecs run: ``python -m kernelkit_launcher TARGET -f {connection_file}``.

A top-level module, as ipykernel's ``ipykernel_launcher``, because ``python -m`` puts the
current folder first on ``sys.path``: a notebook's folder holding ``hmac.py``, ``json.py`` or
``zmq.py`` would otherwise replace the real module in the kernel (``python -P`` needs 3.11).
It removes that entry before importing anything else, then hands over to
:func:`kernelkit.launcher.main`, which imports the kernel and nothing of kernelkit's CLI.
"""

import os
import sys

if __name__ == "__main__":
    if sys.path and sys.path[0] in ("", os.getcwd()):
        del sys.path[0]
    from kernelkit.launcher import main

    main()

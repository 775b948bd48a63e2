"""``python -m kernelkit``: the same as the ``kernelkit`` command."""

from .cli import main

if __name__ == "__main__":
    main()

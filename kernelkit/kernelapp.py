"""``kernelkit.kernelapp``: ipykernel's ``kernelapp`` import path, for kernels ported from ipykernel.

    from kernelkit.kernelapp import IPKernelApp
    IPKernelApp.launch_instance(kernel_class=MyKernel)

    from kernelkit.kernelapp import launch_new_instance
    launch_new_instance(kernel_class=MyKernel)

``IPKernelApp`` can be subclassed as published kernels do (``class MetaKernelApp(IPKernelApp)``):
``launch_instance`` is a classmethod that takes the kernel class from its keyword argument or
from the class attribute ``kernel_class``, other keyword arguments become attributes of the
application, ``subcommands`` (``{"install": (AppClass, "help")}``) are run as traitlets runs
them (``python -m mykernel install --user``), and the running kernel's ``self.parent`` is the
application instance (``extra_args``, ``connection_file``, ``kernel_class``, ``kernel``).
kernelkit has no traitlets configuration: ``--Class.trait=value`` options are ignored with a
warning. Traits declared on a subclass work when the subclass imports traitlets itself.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any, ClassVar

from kernelkit.kernel.app import KernelApp, launch
from kernelkit.kernel.compat import TraitsOnDemand, set_traits


class IPKernelApp(KernelApp, metaclass=TraitsOnDemand):
    """ipykernel's application class, as far as kernels use it."""

    name: ClassVar[str] = "kernelkit"
    subcommands: Any = {}
    _instance: ClassVar[IPKernelApp | None] = None

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(kwargs.pop("kernel_class", None))
        self.argv: list[str] = []
        self.subapp: Any = None
        set_traits(self, kwargs)
        for key, value in kwargs.items():
            if not (hasattr(self, "has_trait") and self.has_trait(key)):
                setattr(self, key, value)

    @classmethod
    def instance(cls, **kwargs: Any) -> IPKernelApp:
        """The process's one application object (traitlets' ``SingletonConfigurable.instance``)."""
        if cls._instance is None or not isinstance(cls._instance, cls):
            IPKernelApp._instance = cls(**kwargs)
        return IPKernelApp._instance  # type: ignore[return-value]

    @classmethod
    def initialized(cls) -> bool:
        return cls._instance is not None

    @classmethod
    def clear_instance(cls) -> None:
        IPKernelApp._instance = None

    @classmethod
    def launch_instance(cls, argv: Sequence[str] | None = None, **kwargs: Any) -> None:
        """Run the kernel as ipykernel's ``IPKernelApp.launch_instance`` does: make the
        application (``kwargs`` set its attributes, ``kernel_class`` among them), then
        ``initialize(argv)`` and ``start()``."""
        app = cls.instance(**kwargs)
        app.initialize(argv)
        app.start()

    def initialize(self, argv: Sequence[str] | None = None) -> None:
        """Take the command line (``sys.argv[1:]`` by default); a first word naming a subcommand
        hands the rest to that subcommand's application."""
        self.argv = list(sys.argv[1:] if argv is None else argv)
        subcommands = self.subcommands or {}
        if self.argv and self.argv[0] in subcommands:
            factory = subcommands[self.argv[0]]
            factory = factory[0] if isinstance(factory, tuple) else factory
            if isinstance(factory, str):
                import importlib

                module, _, attr = factory.rpartition(".")
                factory = getattr(importlib.import_module(module), attr)
            if isinstance(factory, type):  # an Application class: its instance, as traitlets makes it
                self.subapp = factory.instance() if hasattr(factory, "instance") else factory()
            else:  # a callable given the parent application
                self.subapp = factory(self)
            self.subapp.initialize(self.argv[1:])

    def start(self) -> None:
        """Run the subcommand, or serve the kernel until it is shut down."""
        if self.subapp is not None:
            self.subapp.start()
            return
        if self.kernel_class is None:
            raise TypeError(
                f"{type(self).__name__}.launch_instance() needs kernel_class=YourKernel: kernelkit has no "
                "default kernel (ipykernel's default is its IPython kernel)"
            )
        launch(self.kernel_class, self.argv, app=self)


def launch_new_instance(argv: Sequence[str] | None = None, **kwargs: Any) -> None:
    """ipykernel's module-level ``launch_new_instance(kernel_class=...)``."""
    IPKernelApp.launch_instance(argv, **kwargs)


__all__ = ["IPKernelApp", "launch_new_instance"]

"""What ipykernel kernels get from traitlets, only for the kernels that use traitlets.

ipykernel's ``Kernel`` and ``IPKernelApp`` are traitlets ``HasTraits`` classes, so a published
kernel may declare traits on its subclass (metakernel: ``plot_settings = Dict({...})``) or on
its application subclass (``config_dir = Unicode()``). kernelkit does not import traitlets: a
trait declared on a class whose metaclass is :class:`TraitsOnDemand` turns that class into a
``HasTraits`` subclass at class-creation time. Only a class whose own namespace holds a traitlets
descriptor engages it, and such a namespace can exist only once its module has imported
traitlets itself, so this module never imports it: it looks in ``sys.modules``.
"""

from __future__ import annotations

import sys
from typing import Any

_combined: dict[tuple[type, type], type] = {}


def _traitlets() -> Any:
    """The ``traitlets.traitlets`` module if the process has imported it, else None."""
    return sys.modules.get("traitlets.traitlets")


def _declares_traits(namespace: dict[str, Any]) -> bool:
    traitlets = _traitlets()
    if traitlets is None:
        return False
    descriptor = traitlets.BaseDescriptor  # TraitType, and @observe / @default / @validate handlers
    return any(isinstance(value, descriptor) for value in namespace.values())


class TraitsOnDemand(type):
    """A metaclass that adds ``traitlets.HasTraits`` to a class that declares traits.

    ``class K(Kernel): x = Dict({...})`` is created as ``class K(Kernel, HasTraits)`` whose
    metaclass also derives from traitlets' ``MetaHasTraits``: its traits are set up, defaults,
    validation and ``observe`` work, and instances behave as ``HasTraits`` objects. Subclasses of
    such a class are traitlets classes too; a class without traits stays a plain class.
    """

    def __new__(mcls, name: str, bases: tuple[type, ...], namespace: dict[str, Any], **kwargs: Any) -> Any:
        traitlets = _traitlets()
        if traitlets is None or not _declares_traits(namespace):
            return super().__new__(mcls, name, bases, namespace, **kwargs)
        has_traits = traitlets.HasTraits
        if any(issubclass(base, has_traits) for base in bases):
            return super().__new__(mcls, name, bases, namespace, **kwargs)
        meta = _with_traits_meta(mcls, type(has_traits))
        # The class is made by traitlets' metaclass (which checks the namespace); type.__call__
        # then runs meta.__init__ once, which sets the traits up (MetaHasDescriptors.setup_class).
        return super(mcls, meta).__new__(meta, name, (*bases, has_traits), namespace, **kwargs)  # type: ignore[misc]


def _with_traits_meta(mcls: type, traits_meta: type) -> type:
    key = (mcls, traits_meta)
    meta = _combined.get(key)
    if meta is None:
        meta = _combined[key] = type(f"{mcls.__name__}WithTraits", (mcls, traits_meta), {})
    return meta


def set_traits(obj: Any, kwargs: dict[str, Any]) -> None:
    """Constructor keyword arguments naming traits set those traits (``Configurable(x=1)``)."""
    has_trait = getattr(obj, "has_trait", None)
    if has_trait is None or _traitlets() is None:
        return
    for name, value in kwargs.items():
        if has_trait(name):
            setattr(obj, name, value)


class Config(dict):
    """``self.config`` as kernels read it from traitlets: a missing section (a capitalized name,
    ``config["IPKernelApp"]``) is a new empty section; in a running kernel
    ``config["IPKernelApp"]["connection_file"]`` is the connection file, as with ipykernel's ``-f``."""

    def __missing__(self, key: str) -> Any:
        if isinstance(key, str) and key[:1].isupper():
            section = self[key] = Config()
            return section
        if isinstance(key, str) and not key.startswith("_"):
            return None  # traitlets: an unset value (a LazyConfigValue), not a KeyError
        raise KeyError(key)

"""Comms: kernel-side objects that talk to frontend widgets over comm_open / comm_msg / comm_close.

Two kinds of comm object, one manager:

- :class:`Comm`, kernelkit's own, used while the `comm package`_ is not imported;
- once anything in the kernel process imports ``comm`` (ipywidgets, bqplot, plotly's
  FigureWidget, a kernel that calls ``comm.get_comm_manager()``...), kernelkit becomes that
  package's provider: ``comm.create_comm`` makes comms that are ``comm.base_comm.BaseComm``
  subclasses publishing through this kernel, ``comm.get_comm_manager()`` returns
  ``kernel.comm_manager``, and comms the frontend opens are made the same way.

Nothing here imports ``comm``: :func:`provide_comm_package` patches it at once if it is already
imported, or else puts a finder on ``sys.meta_path`` that patches it right after its first
import. A kernel that never touches ``comm`` pays one list insertion at start-up.

.. _comm package: https://github.com/ipython/comm
"""

from __future__ import annotations

import sys
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from kernelkit._log import log
from kernelkit.protocol.wire import Message, new_msg_id

if TYPE_CHECKING:
    from importlib.machinery import ModuleSpec
    from types import ModuleType

#: The kernel a comm talks through: anything with ``send_response`` and ``iopub_socket``, and a
#: ``comm_manager`` (a ``kernelkit.Kernel``; typed loosely so this module does not import it).
KernelLike = Any


MsgCallback = Callable[[Message], None]
TargetCallback = Callable[[Any, Message], None]


class Comm:
    """One end of a comm, with the API of ``comm.base_comm.BaseComm`` (which ipykernel's comms have)."""

    def __init__(
        self, kernel: KernelLike, target_name: str = "comm", comm_id: str | None = None, primary: bool = True
    ) -> None:
        self.kernel = kernel
        self.target_name = target_name
        self.comm_id = comm_id or new_msg_id()
        self.primary = primary
        self._msg_callback: MsgCallback | None = None
        self._close_callback: MsgCallback | None = None
        self._closed = primary  # open once open() has told the frontend; a frontend-opened comm is open

    @property
    def closed(self) -> bool:
        return self._closed

    def publish_msg(
        self,
        msg_type: str,
        data: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
        buffers: list[bytes] | None = None,
        **keys: Any,
    ) -> None:
        content = {"data": {} if data is None else data, "comm_id": self.comm_id, **keys}
        self.kernel.send_response(self.kernel.iopub_socket, msg_type, content, buffers=buffers, metadata=metadata or {})

    def open(
        self,
        data: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
        buffers: list[bytes] | None = None,
    ) -> None:
        self.kernel.comm_manager.register_comm(self)
        self.publish_msg("comm_open", data, metadata, buffers, target_name=self.target_name)
        self._closed = False

    def send(
        self,
        data: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
        buffers: list[bytes] | None = None,
    ) -> None:
        self.publish_msg("comm_msg", data, metadata, buffers)

    def close(
        self,
        data: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
        buffers: list[bytes] | None = None,
    ) -> None:
        if self._closed:
            return
        self._closed = True
        self.kernel.comm_manager.unregister_comm(self)
        self.publish_msg("comm_close", data, metadata, buffers)

    def on_msg(self, callback: MsgCallback | None) -> None:
        """``callback(msg)`` for each ``comm_msg`` from the frontend (``None`` removes it)."""
        self._msg_callback = callback

    def on_close(self, callback: MsgCallback | None) -> None:
        """``callback(msg)`` when the frontend closes the comm."""
        self._close_callback = callback

    def handle_msg(self, msg: Message) -> None:
        if self._msg_callback is not None:
            self._msg_callback(msg)

    def handle_close(self, msg: Message) -> None:
        if self._close_callback is not None:
            self._close_callback(msg)


class CommManager:
    """Targets the frontend may open comms to, and the comms open now.

    ``comm_open``/``comm_msg``/``comm_close`` take ipykernel's handler arguments
    ``(stream, ident, msg)``, so they can sit in ``Kernel.shell_handlers`` as in ipykernel.
    It is also what ``comm.get_comm_manager()`` returns in a kernelkit kernel, so it has the
    comm package's ``CommManager`` API too (``register_comm``, ``unregister_comm``, ``get_comm``).
    """

    def __init__(self, kernel: KernelLike) -> None:
        self.kernel = kernel
        self.targets: dict[str, TargetCallback] = {}
        self.comms: dict[str, Any] = {}

    # ---- the kernel side -----------------------------------------------------------------------

    def register_target(self, target_name: str, callback: TargetCallback | str) -> None:
        """``callback(comm, open_msg)`` runs when the frontend opens a comm to ``target_name``
        (a callable, or an import string ``"package.module.function"``)."""
        target: Any = callback
        if isinstance(callback, str):
            import importlib

            module, _, name = callback.rpartition(".")
            target = getattr(importlib.import_module(module), name) if module else importlib.import_module(name)
        self.targets[target_name] = target

    def unregister_target(self, target_name: str, callback: TargetCallback | None = None) -> TargetCallback | None:
        return self.targets.pop(target_name, None)

    def new_comm(
        self,
        target_name: str = "comm",
        data: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
        buffers: list[bytes] | None = None,
        comm_id: str | None = None,
        primary: bool = True,
    ) -> Any:
        """A comm of the right kind (the comm package's once it is imported); opened if ``primary``."""
        if _package_comm is not None:
            return _package_comm(
                target_name=target_name,
                data=data,
                metadata=metadata,
                buffers=buffers,
                comm_id=comm_id,
                primary=primary,
                kernel=self.kernel,
            )
        comm = Comm(self.kernel, target_name, comm_id, primary)
        if primary:
            comm.open(data, metadata, buffers)
        return comm

    def open(
        self,
        target_name: str,
        data: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
        buffers: list[bytes] | None = None,
    ) -> Any:
        """Open a comm from the kernel side."""
        return self.new_comm(target_name, data, metadata, buffers)

    def register_comm(self, comm: Any) -> str:
        self.comms[comm.comm_id] = comm
        return comm.comm_id

    def unregister_comm(self, comm: Any) -> None:
        self.comms.pop(comm.comm_id, None)

    def get_comm(self, comm_id: str) -> Any:
        comm = self.comms.get(comm_id)
        if comm is None:
            log.warning("no such comm: %r", comm_id)
        return comm

    def comm_info(self, target_name: str | None = None) -> dict[str, dict[str, str]]:
        return {
            cid: {"target_name": c.target_name}
            for cid, c in list(self.comms.items())
            if target_name is None or c.target_name == target_name
        }

    # ---- requests from the frontend --------------------------------------------------------------

    def comm_open(self, stream: Any, ident: Any, msg: Message) -> None:
        content = msg["content"]
        target_name = str(content.get("target_name"))
        comm = self.new_comm(target_name, comm_id=str(content.get("comm_id")), primary=False)
        self.register_comm(comm)
        target = self.targets.get(target_name)
        if target is None and target_name.startswith("jupyter.widget") and "ipywidgets" in sys.modules:
            # ipywidgets registers its targets only under IPython; JupyterLab opens them to
            # restore the kernel's widgets when a notebook is reopened.
            sys.modules["ipywidgets"].register_comm_target()
            target = self.targets.get(target_name)
        if target is None:
            log.warning("comm_open for unknown target %r: closing it", target_name)
            comm.close()
            return
        try:
            target(comm, msg)
        except BaseException:
            comm.close()  # the frontend must not wait on a comm nobody holds
            raise

    def comm_msg(self, stream: Any, ident: Any, msg: Message) -> None:
        comm = self.get_comm(msg["content"].get("comm_id"))
        if comm is not None:
            comm.handle_msg(msg)

    def comm_close(self, stream: Any, ident: Any, msg: Message) -> None:
        comm = self.comms.pop(msg["content"].get("comm_id"), None)
        if comm is None:
            return
        comm._closed = True
        comm.handle_close(msg)


# ---- the comm package ----------------------------------------------------------------------------


# The kernel comm.create_comm and comm.get_comm_manager serve, held weakly: a process that builds
# many kernels (a test suite) must not keep the last one, and its sockets, alive.
def _no_provider() -> KernelLike | None:
    return None


_provider_ref: Callable[[], KernelLike | None] = _no_provider
_package_comm: type | None = None  # our subclass of comm.base_comm.BaseComm, once comm is imported


def provide_comm_package(kernel: KernelLike) -> None:
    """Make ``kernel`` the provider of the ``comm`` package, now or when ``comm`` gets imported."""
    global _provider_ref
    _provider_ref = weakref.ref(kernel)
    module = sys.modules.get("comm")
    if module is not None:
        _patch(module)
    elif not any(isinstance(finder, _CommImportHook) for finder in sys.meta_path):
        sys.meta_path.insert(0, _CommImportHook())


def create_comm(*args: Any, **kwargs: Any) -> Any:
    """``comm.create_comm`` in a kernelkit kernel: a ``BaseComm`` that publishes through the kernel."""
    assert _package_comm is not None
    return _package_comm(*args, **kwargs)


def get_comm_manager() -> CommManager:
    """``comm.get_comm_manager`` in a kernelkit kernel: the kernel's ``comm_manager``."""
    provider = _provider_ref()
    assert provider is not None, "no kernelkit kernel is running in this process"
    return provider.comm_manager


def _patch(module: ModuleType) -> None:
    global _package_comm
    if _package_comm is None:
        from comm.base_comm import BaseComm

        _package_comm = _make_package_comm(BaseComm)
    module.create_comm = create_comm  # type: ignore[attr-defined]
    module.get_comm_manager = get_comm_manager  # type: ignore[attr-defined]


def _make_package_comm(base: Any) -> Any:
    class KernelkitComm(Comm, base):
        """A ``comm.base_comm.BaseComm`` whose messages go out through a kernelkit kernel."""

        def __init__(self, *args: Any, kernel: KernelLike | None = None, **kwargs: Any) -> None:
            self.kernel = kernel if kernel is not None else _provider_ref()
            base.__init__(self, *args, **kwargs)  # opens the frontend's side if primary

        # BaseComm.open/close register with comm.get_comm_manager(), i.e. kernel.comm_manager,
        # and its handle_msg asks IPython for pre/post_execute events: kernelkit's own are used.
        open = base.open
        close = base.close
        handle_msg = Comm.handle_msg
        handle_close = Comm.handle_close

    KernelkitComm.__module__ = __name__
    return KernelkitComm


class _CommImportHook:
    """On ``sys.meta_path``: finds ``comm`` with the other finders and patches it once loaded."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> ModuleSpec | None:
        if fullname != "comm":
            return None
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None)
            if finder is self or find is None:
                continue
            spec = find(fullname, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _PatchingLoader(spec.loader, self)
                return spec
        return None


class _PatchingLoader:
    def __init__(self, loader: Any, hook: _CommImportHook) -> None:
        self._loader = loader
        self._hook = hook

    def create_module(self, spec: ModuleSpec) -> ModuleType | None:
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self._loader.exec_module(module)
        _patch(module)
        if self._hook in sys.meta_path:
            sys.meta_path.remove(self._hook)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loader, name)

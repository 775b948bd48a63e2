"""A kernel written as published ipykernel kernels are (after the import swap): traitlets traits,
the comm package's manager in ``shell_handlers``, an ``IPKernelApp`` subclass with a subcommand
and an app name, ``self.parent.extra_args``, ``send_response(..., channel=None)``, ``do_shutdown``
returning None. tests/test_compat.py drives it through jupyter_client."""

import comm
from traitlets import Dict, Unicode, observe

from kernelkit.kernelapp import IPKernelApp
from kernelkit.kernelbase import Kernel, StdinNotImplementedError


class CompatKernel(Kernel):
    implementation = "compat"
    language_info = {"name": "python", "mimetype": "text/x-python", "file_extension": ".py"}
    settings = Dict({"backend": "inline"})

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.changes = []
        self.comm_log = []
        self.comm_manager = comm.get_comm_manager()
        self.comm_manager.register_target("compat", self._opened)
        for msg_type in ("comm_open", "comm_msg", "comm_close"):
            self.shell_handlers[msg_type] = getattr(self.comm_manager, msg_type)
        self.files = list(self.parent.extra_args) if self.parent is not None else []

    @observe("settings")
    def _settings_changed(self, change):
        self.changes.append(change["new"])

    def _opened(self, comm, msg):
        self.comm_log.append(msg["content"]["data"])
        def on_msg(m):
            self.comm_log.append(m["content"]["data"])
            comm.send({"echo": m["content"]["data"]})  # published on iopub by kernelkit, the comm package's provider

        comm.on_msg(on_msg)

    def do_execute(self, code, silent, store_history=True, user_expressions=None, allow_stdin=False):
        try:
            value = eval(code, {"kernel": self, "StdinNotImplementedError": StdinNotImplementedError})
        except StdinNotImplementedError as exc:
            value = f"StdinNotImplementedError: {exc}"
        self.send_response(self.iopub_socket, "stream", {"name": "stdout", "text": repr(value)}, channel=None)
        return {"status": "ok", "execution_count": self.execution_count}

    def do_shutdown(self, restart):
        return None


class HelloApp:
    def initialize(self, argv=None):
        self.words = list(argv or [])

    def start(self):
        print("hello", *self.words)


class CompatApp(IPKernelApp):
    config_dir = Unicode("the-config-dir")

    @classmethod
    def launch_instance(cls, *args, **kwargs):
        cls.name = kwargs.pop("app_name", "compat")
        super().launch_instance(*args, **kwargs)

    @property
    def subcommands(self):
        return {"hello": (HelloApp, "say hello")}


if __name__ == "__main__":
    CompatApp.launch_instance(kernel_class=CompatKernel, app_name="compat-kernel")

"""jupyter_kernel_test's protocol checks against the echo kernel and the calc test kernel.

The echo kernel can only echo, so the checks it cannot meaningfully take (stderr, errors,
completion, history...) are removed from its class (not skipped) and run against calc,
a small Python-eval kernel in tests/kernels/ built only on kernelkit's public API.
"""

from __future__ import annotations

import jupyter_kernel_test as jkt

from conftest import CALC, ECHO
from helpers import new_manager, start_kernel


class KernelTests:
    """Mixin: start the kernel with its connection file in the test runtime dir (see conftest)."""

    @classmethod
    def setUpClass(cls) -> None:
        cls.km, cls.kc = start_kernel(cls.kernel_name)


class IopubWelcomeTests:
    """Mixin: as above, without starting the client's channels (the test starts them)."""

    @classmethod
    def setUpClass(cls) -> None:
        cls.km = new_manager(cls.kernel_name)
        cls.km.start_kernel()
        cls.kc = cls.km.client()


class TestEchoKernel(KernelTests, jkt.KernelTests):
    kernel_name = ECHO
    language_name = "Any text"
    file_extension = ".txt"
    code_hello_world = "hello, world"

    # Not applicable to an echo kernel; TestCalcKernel runs each of these.
    test_execute_stderr = None
    test_completion = None
    test_is_complete = None
    test_pager = None
    test_error = None
    test_execute_result = None
    test_display_data = None
    test_history = None
    test_inspect = None
    test_clear_output = None

    def test_echo_returns_the_code_verbatim(self) -> None:
        self.flush_channels()
        code = "  any text,\n\twith ünïcode ✓ and \"quotes\"\n"
        reply, output_msgs = self.execute_helper(code=code)
        self.assertEqual(reply["content"]["status"], "ok")
        self.assertEqual([m["content"] for m in output_msgs], [{"name": "stdout", "text": code}])

    def test_kernel_info_fields(self) -> None:
        self.flush_channels()
        self.kc.kernel_info()
        content = self.kc.get_shell_msg(timeout=jkt.TIMEOUT)["content"]
        self.assertEqual(content["implementation"], "Echo")
        self.assertEqual(content["implementation_version"], "1.0")
        self.assertEqual(content["banner"], "Echo kernel - as useful as a parrot")
        self.assertEqual(content["protocol_version"], "5.5")
        self.assertEqual(content["language_info"]["mimetype"], "text/plain")
        self.assertEqual(content["language_info"]["version"], "0.1")
        self.assertIsInstance(content["supported_features"], list)


class TestEchoIopubWelcome(IopubWelcomeTests, jkt.IopubWelcomeTests):
    kernel_name = ECHO
    support_iopub_welcome = True


class TestCalcKernel(KernelTests, jkt.KernelTests):
    kernel_name = CALC
    language_name = "python"
    file_extension = ".py"
    code_hello_world = "print('hello, world')"
    code_stderr = "import sys; print('oops', file=sys.stderr)"
    completion_samples = [
        {"text": "pri", "matches": {"print"}},
        {"text": "clear_o", "matches": {"clear_output"}},
        {"text": "x = isinst", "matches": {"isinstance"}},
    ]
    complete_code_samples = ["1 + 1", "x = 1", "for i in range(3):\n    pass\n"]
    incomplete_code_samples = ["def f(x):", "(1 +", "x = [1,"]
    invalid_code_samples = ["1 +* 2", "def (:", "x = = 1"]
    code_page_something = "page('some help text')"
    code_generate_error = "raise ValueError('boom')"
    code_execute_result = [
        {"code": "6*7", "result": "42"},
        {"code": "HTML('<b>bold</b>')", "mime": "text/html", "result": "<b>bold</b>"},
    ]
    code_display_data = [
        {"code": "display({'text/html': '<i>x</i>', 'text/plain': 'x'})", "mime": "text/html"},
        {"code": "display('plain')", "mime": "text/plain"},
    ]
    code_history_pattern = "6*7"
    supported_history_operations = ("tail", "range", "search")
    code_inspect_sample = "print"
    code_clear_output = "clear_output()"


class TestCalcIopubWelcome(IopubWelcomeTests, jkt.IopubWelcomeTests):
    kernel_name = CALC
    support_iopub_welcome = True

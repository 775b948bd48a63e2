"""Rich display of any object (kernelkit.kernel.display), in memory; then through a real kernel."""

from __future__ import annotations

import base64
import subprocess
import sys
import textwrap

import pytest

from conftest import CALC
from helpers import execute, outputs, start_kernel, stop_kernel
from kernelkit.kernel.display import FormatterWarning, display_data, format_display_data

PNG = b"\x89PNG\r\n\x1a\nfake"


class Everything:
    def _repr_html_(self):
        return "<b>html</b>"

    def _repr_markdown_(self):
        return "**md**"

    def _repr_svg_(self):
        return "<svg></svg>"

    def _repr_png_(self):
        return PNG

    def _repr_jpeg_(self):
        return b"\xff\xd8jpeg"

    def _repr_pdf_(self):
        return b"%PDF-1.4"

    def _repr_latex_(self):
        return r"$x^2$"

    def _repr_json_(self):
        return {"a": [1, 2]}

    def _repr_javascript_(self):
        return "console.log(1)"

    def __repr__(self):
        return "Everything()"


def test_display_takes_a_dict_as_a_bundle_and_a_str_as_text() -> None:
    bundle = {"text/html": "<i>x</i>", "application/x-thing": {"k": 1}}
    assert display_data(bundle) == (bundle, {})
    assert display_data({"image/png": PNG}) == ({"image/png": base64.b64encode(PNG).decode()}, {})
    assert display_data("hello") == ({"text/plain": "hello"}, {})
    assert display_data(Everything()) == format_display_data(Everything())


def test_results_show_the_repr_of_a_dict_or_str() -> None:
    """As in IPython: a cell ending in ``"hi"`` or ``{...}`` shows its repr."""
    assert format_display_data("hello") == ({"text/plain": "'hello'"}, {})
    assert format_display_data({"text/html": "x"}) == ({"text/plain": "{'text/html': 'x'}"}, {})


def test_plain_object_is_its_repr() -> None:
    assert format_display_data(42) == ({"text/plain": "42"}, {})
    assert format_display_data([1, "a"]) == ({"text/plain": "[1, 'a']"}, {})
    assert format_display_data(None) == ({"text/plain": "None"}, {})


def test_every_repr_method() -> None:
    data, metadata = format_display_data(Everything())
    assert data == {
        "text/html": "<b>html</b>",
        "text/markdown": "**md**",
        "image/svg+xml": "<svg></svg>",
        "image/png": base64.b64encode(PNG).decode(),
        "image/jpeg": base64.b64encode(b"\xff\xd8jpeg").decode(),
        "application/pdf": base64.b64encode(b"%PDF-1.4").decode(),
        "text/latex": "$x^2$",
        "application/json": {"a": [1, 2]},
        "application/javascript": "console.log(1)",
        "text/plain": "Everything()",
    }
    assert metadata == {}


def test_none_means_no_such_form_and_tuples_carry_metadata() -> None:
    class Picture:
        def _repr_html_(self):
            return None

        def _repr_png_(self):
            return PNG, {"width": 10, "height": 5}

        def _repr_markdown_(self):
            return ("*md*", None)

    data, metadata = format_display_data(Picture())
    assert set(data) == {"image/png", "text/markdown", "text/plain"}
    assert data["image/png"] == base64.b64encode(PNG).decode()
    assert metadata == {"image/png": {"width": 10, "height": 5}}


def test_base64_text_is_kept_as_given() -> None:
    class Already:
        def _repr_png_(self):
            return "aGVsbG8="

    assert format_display_data(Already())[0]["image/png"] == "aGVsbG8="


def test_mimebundle_first_then_other_reprs_fill_in() -> None:
    class Bundled:
        def __init__(self):
            self.calls = []

        def _repr_mimebundle_(self, include=None, exclude=None):
            self.calls.append((include, exclude))
            return {"text/html": "<p>from bundle</p>", "text/plain": "plain from bundle",
                    "application/vnd.custom+json": {"x": 1}}

        def _repr_html_(self):
            raise AssertionError("the bundle already has text/html")

        def _repr_latex_(self):
            return "$y$"

    obj = Bundled()
    data, _ = format_display_data(obj)
    assert data == {"text/html": "<p>from bundle</p>", "text/plain": "plain from bundle",
                    "application/vnd.custom+json": {"x": 1}, "text/latex": "$y$"}
    assert obj.calls == [(None, None)]


def test_mimebundle_tuple_and_none() -> None:
    class Pair:
        def _repr_mimebundle_(self, include=None, exclude=None):
            return {"image/png": PNG}, {"image/png": {"width": 3}}

    data, metadata = format_display_data(Pair())
    assert data["image/png"] == base64.b64encode(PNG).decode()
    assert data["text/plain"].startswith("<")
    assert metadata == {"image/png": {"width": 3}}

    class Nothing:
        def _repr_mimebundle_(self, include=None, exclude=None):
            return None

        def _repr_html_(self):
            return "<i>fallback</i>"

    assert format_display_data(Nothing())[0]["text/html"] == "<i>fallback</i>"


def test_include_and_exclude() -> None:
    data, _ = format_display_data(Everything(), include={"text/html", "image/png"})
    assert set(data) == {"text/html", "image/png", "text/plain"}
    data, _ = format_display_data(Everything(), exclude={"text/html", "application/pdf"})
    assert "text/html" not in data and "application/pdf" not in data and "text/markdown" in data


def test_json_string_is_parsed() -> None:
    class J:
        def _repr_json_(self):
            return '{"k": [1]}'

    assert format_display_data(J())[0]["application/json"] == {"k": [1]}

    class NotJSON:
        def _repr_json_(self):
            return "{not json"

    with pytest.warns(FormatterWarning, match="not JSON"):
        assert "application/json" not in format_display_data(NotJSON())[0]


def test_a_failing_repr_method_is_left_out_with_a_warning() -> None:
    class Broken:
        def _repr_html_(self):
            raise ValueError("no html today")

        def _repr_markdown_(self):
            return "*still here*"

        @property
        def _repr_svg_(self):
            raise RuntimeError("property raising")

        def __repr__(self):
            return "Broken()"

    with pytest.warns(FormatterWarning, match="no html today"):
        data, _ = format_display_data(Broken())
    assert data == {"text/markdown": "*still here*", "text/plain": "Broken()"}


def test_classes_and_claim_everything_objects_show_their_repr() -> None:
    assert format_display_data(Everything) == ({"text/plain": repr(Everything)}, {})

    class Proxy:
        def __getattr__(self, name):
            return lambda *a, **k: "<b>anything</b>"

        def __repr__(self):
            return "Proxy()"

    assert format_display_data(Proxy()) == ({"text/plain": "Proxy()"}, {})


def test_pandas_dataframe_is_an_html_table() -> None:
    import pandas as pd  # a test dependency (the test extra)
    frame = pd.DataFrame({"kernel": ["echo", "calc"], "ms": [120, 130]})
    data, _ = format_display_data(frame)
    assert "<table" in data["text/html"] and "<td>echo</td>" in data["text/html"]
    assert data["text/plain"] == repr(frame)


def test_matplotlib_figure_is_a_png() -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(2, 1))
    fig.add_subplot().plot([1, 3, 2])
    data, _ = format_display_data(fig)
    assert base64.b64decode(data["image/png"]).startswith(b"\x89PNG\r\n\x1a\n")
    assert data["text/plain"] == repr(fig)


def test_the_formatter_never_imports_matplotlib_or_ipython() -> None:
    code = textwrap.dedent(
        """
        import sys
        from kernelkit.kernel.display import format_display_data
        class Fig:
            def __repr__(self): return 'Fig'
        format_display_data(Fig())
        format_display_data(object())
        bad = [m for m in ("matplotlib", "IPython", "pandas", "comm") if m in sys.modules]
        assert not bad, bad
        """
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# ---- through a real kernel --------------------------------------------------------------------


@pytest.fixture(scope="module")
def calc():
    km, kc = start_kernel(CALC)
    yield kc
    stop_kernel(km, kc)



def test_display_and_execute_results_of_objects(calc) -> None:
    code = textwrap.dedent(
        """
        class Card:
            def _repr_html_(self): return '<div class="card">ace</div>'
            def _repr_png_(self): return b'\\x89PNG\\r\\n\\x1a\\n..', {'width': 4}
            def __repr__(self): return 'Card()'
        display(Card())
        display({'text/markdown': '# md'}, display_id='d1')
        update_display(Card(), display_id='d1')
        display('just text')
        """
    )
    reply, msgs = execute(calc, code)
    assert reply["content"]["status"] == "ok"
    got = [(m["msg_type"], m["content"]) for m in outputs(msgs)]
    card = {"text/html": '<div class="card">ace</div>', "image/png": base64.b64encode(b"\x89PNG\r\n\x1a\n..").decode(),
            "text/plain": "Card()"}
    assert got == [
        ("display_data", {"data": card, "metadata": {"image/png": {"width": 4}}, "transient": {}}),
        ("display_data", {"data": {"text/markdown": "# md"}, "metadata": {}, "transient": {"display_id": "d1"}}),
        ("update_display_data", {"data": card, "metadata": {"image/png": {"width": 4}}, "transient": {"display_id": "d1"}}),
        ("display_data", {"data": {"text/plain": "just text"}, "metadata": {}, "transient": {}}),
    ]


def test_execute_result_of_a_dataframe(calc) -> None:
    reply, msgs = execute(calc, "import pandas as pd\npd.DataFrame({'kernel': ['echo'], 'ms': [120]})")
    assert reply["content"]["status"] == "ok"
    [result] = [m["content"] for m in msgs if m["msg_type"] == "execute_result"]
    assert "<td>echo</td>" in result["data"]["text/html"] and "kernel" in result["data"]["text/plain"]


def test_display_of_a_matplotlib_figure(calc) -> None:
    code = "import matplotlib\nmatplotlib.use('Agg')\nimport matplotlib.pyplot as plt\nfig = plt.figure()\nplt.plot([1, 2])\ndisplay(fig)"
    reply, msgs = execute(calc, code)
    assert reply["content"]["status"] == "ok"
    [shown] = [m["content"]["data"] for m in msgs if m["msg_type"] == "display_data"]
    assert base64.b64decode(shown["image/png"]).startswith(b"\x89PNG") and shown["text/plain"].startswith("<Figure")

"""Rich display of any object, without IPython: an object becomes a MIME bundle.

:func:`format_display_data` follows IPython's rich-display protocol, so an object that shows
itself richly in IPython (a pandas ``DataFrame``, a ``sympy`` expression, an ipywidget, your own
class with ``_repr_html_``) shows the same way through any kernelkit kernel:

- ``_repr_mimebundle_(include=None, exclude=None)`` gives a bundle, or a ``(data, metadata)`` pair;
- then each ``_repr_*_`` method below adds its MIME type when the bundle lacks it; each may return
  the data or a ``(data, metadata)`` pair, and ``None`` means "not in this form";
- a ``matplotlib.figure.Figure`` becomes a PNG (only when matplotlib is already imported: this
  module never imports it);
- binary data (``bytes`` for PNG, JPEG, PDF) is base64-encoded, as the messaging protocol wants;
- ``text/plain`` is always there (``repr(obj)`` unless the object gave one).

A ``_repr_*_`` method that raises is skipped with a warning (shown as stderr in the output
area); only ``repr()`` failing is an error. Pure functions: no I/O, no kernel, no globals.

:func:`format_display_data` is what a Python-executing kernel sends as ``execute_result`` (a
``str`` or a ``dict`` result shows its ``repr``, as in IPython); :func:`display_data` is what
``Kernel.display`` sends, where a ``dict`` is already a MIME bundle and a ``str`` is ``text/plain``.
"""

from __future__ import annotations

import sys
from collections.abc import Collection
from typing import Any

MimeBundle = dict[str, Any]

#: IPython's ``_repr_*_`` methods and the MIME type each one gives, in IPython's order.
REPR_METHODS: tuple[tuple[str, str], ...] = (
    ("_repr_html_", "text/html"),
    ("_repr_markdown_", "text/markdown"),
    ("_repr_svg_", "image/svg+xml"),
    ("_repr_png_", "image/png"),
    ("_repr_pdf_", "application/pdf"),
    ("_repr_jpeg_", "image/jpeg"),
    ("_repr_latex_", "text/latex"),
    ("_repr_json_", "application/json"),
    ("_repr_javascript_", "application/javascript"),
)

#: MIME types whose data travels base64-encoded in JSON.
BINARY_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf"})

# An attribute no real object has: an object that claims it answers every attribute
# (a proxy, a mock) must not have its "_repr_html_" called (IPython checks the same way).
_CANARY = "_kernelkit_canary_method_should_not_exist_"


class FormatterWarning(UserWarning):
    """A ``_repr_*_`` method raised or returned something unusable; that form is left out."""


def format_display_data(
    obj: Any, include: Collection[str] | None = None, exclude: Collection[str] | None = None
) -> tuple[MimeBundle, dict[str, Any]]:
    """``(data, metadata)`` for any object, as IPython formats it: an ``execute_result``'s content.

    ``include``/``exclude`` limit the MIME types (``text/plain`` is always kept), and are passed
    on to ``_repr_mimebundle_``.
    """
    data: MimeBundle = {}
    metadata: dict[str, Any] = {}
    if not isinstance(obj, type) and not _claims_everything(obj):  # classes show as their repr
        mimebundle = _method(obj, "_repr_mimebundle_")
        if mimebundle is not None:
            result = _call(mimebundle, "_repr_mimebundle_", include=include, exclude=exclude)
            if isinstance(result, tuple) and len(result) == 2:
                result, md = result
                if isinstance(md, dict):
                    metadata.update(md)
            if isinstance(result, dict):
                data.update(result)
            elif result is not None:
                _warn(obj, "_repr_mimebundle_", f"returned {type(result).__name__}, not a dict")
        for name, mimetype in REPR_METHODS:
            if mimetype in data or not _wanted(mimetype, include, exclude):
                continue
            method = _method(obj, name)
            if method is None:
                continue
            result = _call(method, name)
            md = None
            if isinstance(result, tuple) and len(result) == 2:
                result, md = result
            if result is None:
                continue
            if mimetype == "application/json" and isinstance(result, str):
                import json

                try:
                    result = json.loads(result)
                except ValueError as exc:
                    _warn(obj, name, f"returned a string that is not JSON ({exc})")
                    continue
            data[mimetype] = result
            if md is not None:
                metadata[mimetype] = md
        if "image/png" not in data and _wanted("image/png", include, exclude):
            png = _matplotlib_png(obj)
            if png is not None:
                data["image/png"] = png
    data = {k: v for k, v in data.items() if k == "text/plain" or _wanted(k, include, exclude)}
    if "text/plain" not in data:
        data["text/plain"] = repr(obj)
    return _encode_bundle(data), metadata


def display_data(obj: Any) -> tuple[MimeBundle, dict[str, Any]]:
    """``(data, metadata)`` for ``Kernel.display(obj)``: a ``dict`` is a MIME bundle already (bytes
    values base64-encoded), a ``str`` is ``text/plain``, any other object as :func:`format_display_data`."""
    if isinstance(obj, dict):
        return _encode_bundle(obj), {}
    if isinstance(obj, str):
        return {"text/plain": obj}, {}
    return format_display_data(obj)


def _wanted(mimetype: str, include: Collection[str] | None, exclude: Collection[str] | None) -> bool:
    return (not include or mimetype in include) and not (exclude and mimetype in exclude)


def _claims_everything(obj: Any) -> bool:
    try:
        return getattr(obj, _CANARY, None) is not None
    except Exception:
        return True


def _method(obj: Any, name: str) -> Any:
    try:
        method = getattr(obj, name, None)
    except Exception:  # a property that raises: treat as absent, as IPython does
        return None
    return method if callable(method) else None


def _call(method: Any, name: str, **kwargs: Any) -> Any:
    try:
        return method(**kwargs)
    except Exception as exc:
        _warn(getattr(method, "__self__", method), name, f"raised {type(exc).__name__}: {exc}")
        return None


def _warn(obj: Any, name: str, what: str) -> None:
    import warnings

    warnings.warn(f"{type(obj).__name__}.{name} {what}; that form is left out", FormatterWarning, stacklevel=4)


def _matplotlib_png(obj: Any) -> bytes | None:
    """A matplotlib figure as PNG bytes, when matplotlib is already imported and ``obj`` is one."""
    figure_module = sys.modules.get("matplotlib.figure")
    figure_class = getattr(figure_module, "Figure", None)
    if figure_class is None or not isinstance(obj, figure_class):
        return None
    import io

    buffer = io.BytesIO()
    try:
        # What IPython's inline backend does: the figure's own dpi and face colour, cropped.
        obj.savefig(
            buffer, format="png", bbox_inches="tight", facecolor=obj.get_facecolor(), edgecolor=obj.get_edgecolor()
        )
    except Exception as exc:
        _warn(obj, "savefig", f"raised {type(exc).__name__}: {exc}")
        return None
    return buffer.getvalue()


def _encode_bundle(data: MimeBundle) -> MimeBundle:
    """Bytes become text JSON can carry: base64 for binary types, UTF-8 for the others."""
    if not any(isinstance(v, (bytes, bytearray, memoryview)) for v in data.values()):
        return data
    import base64

    encoded = {}
    for mimetype, value in data.items():
        if isinstance(value, (bytes, bytearray, memoryview)):
            if mimetype in BINARY_TYPES or not (
                mimetype.startswith("text/")
                or mimetype.endswith(("+xml", "+json"))
                or mimetype in ("application/json", "application/javascript")
            ):
                value = base64.b64encode(value).decode("ascii")
            else:
                value = bytes(value).decode("utf-8", "replace")
        encoded[mimetype] = value
    return encoded

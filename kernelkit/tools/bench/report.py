"""Reporting: the machine a run was measured on, the figures as a text table, and a chart (matplotlib)."""

from __future__ import annotations

import os
import platform
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

import zmq

from kernelkit.tools.bench.floor import FLOOR_KERNEL, MB


def machine_info() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    versions: dict[str, str | None] = {
        "python": platform.python_version(),
        "pyzmq": zmq.__version__,
        "libzmq": zmq.zmq_version(),
    }
    for dist in ("jupyter_client", "ipykernel", "kernelkit"):
        try:
            from importlib.metadata import version

            versions[dist] = version(dist)
        except Exception:
            versions[dist] = None
    return {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "platform": platform.platform(),
        "versions": versions,
    }


FIGURES = (
    # (label, key path, unit, format)
    ("start → kernel_info_reply", ("start_ms", "median"), "ms", "{:.0f}"),
    ("execute round trip, median", ("roundtrip_us", "median"), "µs", "{:.0f}"),
    ("execute round trip, p99", ("roundtrip_us", "p99"), "µs", "{:.0f}"),
    ("kernel CPU per cell", ("cpu_us_per_cell",), "µs", "{:.0f}"),
    ("stream throughput", ("stream_mb_per_s",), "MB/s", "{:.0f}"),
    ("pipelined messages/s", ("pipelined", "messages_per_s"), "msg/s", "{:.0f}"),
    ("idle RSS (process tree)", ("rss_idle_mb",), "MB", "{:.1f}"),
    ("RSS after load", ("rss_after_load_mb",), "MB", "{:.1f}"),
    ("installed footprint", ("footprint", "bytes"), "MB", "{:.1f}"),
)


def figure(entry: dict[str, Any], path: Sequence[str]) -> float | None:
    value: Any = entry
    for key in path:
        if not isinstance(value, dict) or value.get(key) is None:
            return None
        value = value[key]
    if path[0] == "footprint":
        value = value / MB
    return float(value)


def format_table(results: dict[str, Any], baseline: str | None = None, baselines: dict[str, str] | None = None) -> str:
    """A plain-text table, one column per kernel, with ratios to ``baseline`` when given.

    ``baselines`` overrides the baseline per figure (keyed by the figure's first key, e.g.
    ``{"rss_idle_mb": "ipykernel"}``).
    """
    kernels = results["kernels"]
    names = list(kernels)
    rows = [["", *names]]
    for label, path, unit, fmt in FIGURES:
        row = [f"{label} ({unit})"]
        ref = (baselines or {}).get(path[0], baseline)
        base = figure(kernels[ref], path) if ref in kernels else None
        if ref is not None and ref != baseline:
            row[0] += f" [× vs {ref}]"  # noqa: RUF001 - the multiplication sign, on purpose
        for name in names:
            value = figure(kernels[name], path)
            cell = "-" if value is None else fmt.format(value)
            if value is not None and base and name != ref:
                cell += f" ({value / base:.2f}×)"  # noqa: RUF001
            row.append(cell)
        rows.append(row)
    for label, ms in results.get("python_start_ms", {}).items():
        rows.append([f"{label} (ms)", *[f"{ms:.0f}" if i == 0 else "" for i in range(len(names))]])
    failed = [f"{n}: {e['error']}" for n, e in kernels.items() if not e["ok"]]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=False)))
        for r in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines + [f"FAILED {f}" for f in failed])


def chart(results: dict[str, Any], path: str) -> None:
    """Bar charts of the main figures, one panel each (needs matplotlib)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kernels = {n: e for n, e in results["kernels"].items() if e["ok"]}
    panels = [f for f in FIGURES if any(figure(e, f[1]) is not None for e in kernels.values())]
    cols = 3
    rows = max(1, -(-len(panels) // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.2 * rows), squeeze=False)
    many = len(kernels) > 5
    for ax, (label, key, unit, _) in zip(axes.flat, panels, strict=False):
        known = {n: figure(kernels[n], key) for n in kernels}
        names = [n for n, v in known.items() if v is not None]
        values = [float(v) for v in known.values() if v is not None]
        bars = ax.bar(range(len(names)), values, color=["0.6" if n == FLOOR_KERNEL else "C0" for n in names])
        ax.bar_label(bars, labels=[f"{v:.0f}" if v >= 100 else f"{v:.3g}" for v in values], fontsize=7 if many else 8)
        ax.set_xticks(range(len(names)), names, rotation=40 if many else 20, ha="right", fontsize=7 if many else 8)
        positive = [v for v in values if v > 0]
        log = bool(positive) and max(positive) / min(positive) > 30  # one slow kernel would flatten the rest
        if log:
            ax.set_yscale("log")
        ax.set_title(f"{label} ({unit}{', log scale' if log else ''})", fontsize=9)
        if key[0] == "start_ms":
            for i, (floor_label, ms) in enumerate(results.get("python_start_ms", {}).items()):
                ax.axhline(ms, color=f"C{i + 1}", linestyle="--", linewidth=1, label=floor_label)
            if results.get("python_start_ms"):
                ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    fig.suptitle(f"kernelkit bench, {results['meta']['date']}, {results['meta']['cpu']}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)

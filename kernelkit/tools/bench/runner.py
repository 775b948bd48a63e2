"""A benchmark run: the phases, each kernel in turn (round-robin), failures recorded per kernel."""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import zmq

from kernelkit.tools import kernelspecs
from kernelkit.tools.bench.driving import (
    STREAM_CELL,
    TRIVIAL_CELL,
    BenchKernel,
    first_outputs,
    stream_cell,
    stream_rate,
)
from kernelkit.tools.bench.floor import MB
from kernelkit.tools.bench.metrics import installed_footprint, python_start_times, quantiles
from kernelkit.tools.bench.report import machine_info

Progress = Callable[[str], None]


def _scaled(samples: list[float], factor: float) -> dict[str, float]:
    return {k: v * factor if k != "n" else v for k, v in quantiles(samples).items()}


class BenchRun:
    """State of one run: the kernels' results, the running kernels, and the phases as methods."""

    def __init__(
        self,
        kernels: Sequence[str],
        *,
        timeout: float,
        progress: Progress | None,
        kernel_dirs: Sequence[str],
        cells_by_kernel: Mapping[str, str] | None,
        stream_cells: Mapping[str, str] | None,
    ) -> None:
        self.kernels = list(kernels)
        self.timeout = timeout
        self.say = progress or (lambda text: None)
        found = kernelspecs.find([*kernelspecs.kernel_dirs(), *(Path(d) for d in kernel_dirs)])
        self.specs = {name: kernelspecs.get(name, found) for name in self.kernels}
        self.results: dict[str, dict[str, Any]] = {}
        self.running: dict[str, BenchKernel] = {}
        for name, spec in self.specs.items():
            self.results[name] = {
                "ok": True,
                "error": None,
                "argv": spec.argv,
                "display_name": spec.display_name,
                "cells": {
                    "trivial": (cells_by_kernel or {}).get(name, TRIVIAL_CELL),
                    "stream": (stream_cells or {}).get(name, STREAM_CELL),
                },
            }
        self.context = zmq.Context()

    def cell(self, name: str) -> str:
        return str(self.results[name]["cells"]["trivial"])

    def fail(self, name: str, step: str, exc: BaseException) -> None:
        self.results[name].update(ok=False, error=f"{step}: {type(exc).__name__}: {exc}")
        self.say(f"{name}: FAILED at {step}: {exc}")

    def live(self) -> list[str]:
        return [n for n in self.kernels if self.results[n]["ok"]]

    def each(self, step: str, action: Callable[[str, BenchKernel], None]) -> None:
        """``action`` on every running kernel in turn; a kernel that fails is recorded and stopped."""
        for name in list(self.running):
            try:
                action(name, self.running[name])
            except Exception as exc:
                self.fail(name, step, exc)
                self.running.pop(name).stop()

    # ---- phases ---------------------------------------------------------------------------------

    def starts(self, starts: int, python_starts: int | None) -> dict[str, list[float]]:
        """Start each kernel ``starts`` times, interleaved with the interpreter's own start (the floor)."""
        start_samples: dict[str, list[float]] = {n: [] for n in self.kernels}
        spawn_samples: dict[str, list[float]] = {n: [] for n in self.kernels}
        py_samples: dict[str, list[float]] = {}
        for i in range(starts):
            if python_starts is None or i < python_starts:
                for label, values in python_start_times(sys.executable, 1).items():
                    py_samples.setdefault(label, []).extend(values)
            for name in self.live():
                try:
                    kernel = BenchKernel(self.specs[name], self.context, timeout=self.timeout)
                except Exception as exc:
                    self.fail(name, "start", exc)
                    continue
                kernel.stop()
                start_samples[name].append(kernel.start_s)
                spawn_samples[name].append(kernel.spawn_s)
                self.say(f"start {i + 1}/{starts}  {name:<24} {kernel.start_s * 1e3:8.1f} ms")
        for name in self.live():
            self.results[name]["start_ms"] = _scaled(start_samples[name], 1e3)
            self.results[name]["spawn_ms"] = statistics.median(spawn_samples[name]) * 1e3
            self.results[name]["start_samples_s"] = start_samples[name]
        return py_samples

    def start_all(self, shells: int) -> None:
        """All kernels up at once (iopub subscribed), then their idle RSS."""
        for name in self.live():
            try:
                self.running[name] = kernel = BenchKernel(self.specs[name], self.context, shells, self.timeout)
                kernel.connect_iopub(self.timeout)
            except Exception as exc:
                self.fail(name, "start", exc)
                if name in self.running:
                    self.running.pop(name).stop()
        time.sleep(1.0)  # let start-up work (imports, threads) settle before reading RSS
        for name, kernel in self.running.items():
            self.results[name]["rss_idle_mb"] = kernel.rss() / MB

    def warmup(self, cells: int) -> None:
        def first(name: str, kernel: BenchKernel) -> None:
            self.results[name]["iopub_per_cell"] = first_outputs(kernel, self.cell(name))

        def again(name: str, kernel: BenchKernel) -> None:
            kernel.execute(self.cell(name))

        self.each("warm-up", first)
        for _ in range(cells - 1):
            self.each("warm-up", again)

    def round_trips(self, cells: int, batch: int) -> None:
        rtt: dict[str, list[float]] = {n: [] for n in self.running}
        cpu: dict[str, float] = {n: 0.0 for n in self.running}
        done = 0
        while done < cells:
            n = min(batch, cells - done)

            def cells_on(name: str, kernel: BenchKernel, n: int = n) -> None:
                before = kernel.cpu()
                code = self.cell(name)
                rtt[name].extend(kernel.execute(code)[0] for _ in range(n))
                cpu[name] += kernel.cpu() - before

            self.each("execute", cells_on)
            done += n
            self.say(
                f"execute {done}/{cells}  "
                + "  ".join(f"{name} {statistics.median(rtt[name]) * 1e6:.0f} µs" for name in self.running)
            )
        for name in self.running:
            self.results[name]["roundtrip_us"] = _scaled(rtt[name], 1e6)
            self.results[name]["cpu_us_per_cell"] = cpu[name] / len(rtt[name]) * 1e6

    def stream(self, stream_mb: float, reps: int) -> None:
        size = int(stream_mb * MB)
        codes = {name: stream_cell(self.results[name]["cells"]["stream"], size) for name in self.running}
        tput: dict[str, list[float]] = {n: [] for n in self.running}
        for rep in range(reps):
            self.each(
                "stream", lambda name, kernel: tput[name].append(stream_rate(kernel, codes[name], size, self.timeout))
            )
            self.say(
                f"stream {rep + 1}/{reps}  "
                + "  ".join(f"{name} {statistics.median(tput[name]):.0f} MB/s" for name in self.running)
            )
        for name in self.running:
            self.results[name]["stream_mb_per_s"] = statistics.median(tput[name])
            self.results[name]["stream_samples_mb_per_s"] = tput[name]

    def pipelined(self, requests: int, depth: int) -> None:
        def pipeline(name: str, kernel: BenchKernel) -> None:
            self.results[name]["pipelined"] = figures = kernel.pipelined(requests, depth, self.timeout, self.cell(name))
            self.say(f"pipelined  {name:<24} {figures['messages_per_s']:8.0f} msg/s")

        self.each("pipelined", pipeline)

    def rss_after_load(self) -> None:
        time.sleep(0.5)
        for name, kernel in self.running.items():
            self.results[name]["rss_after_load_mb"] = kernel.rss() / MB

    def footprints(self) -> None:
        for name, spec in self.specs.items():
            self.results[name]["footprint"] = installed_footprint(spec.argv)

    def close(self) -> None:
        for kernel in self.running.values():
            kernel.stop()
        self.running.clear()
        self.context.destroy(linger=0)


def run(
    kernels: Sequence[str],
    *,
    starts: int = 7,
    cells: int = 500,
    warmup: int = 100,
    batch: int = 50,
    stream_mb: float = 10,
    stream_reps: int = 5,
    clients: int = 8,
    pipeline_requests: int = 2000,
    pipeline_depth: int = 4,
    python_starts: int | None = None,
    footprint: bool = True,
    timeout: float = 60.0,
    progress: Progress | None = None,
    kernel_dirs: Sequence[str] = (),
    cells_by_kernel: Mapping[str, str] | None = None,
    stream_cells: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Benchmark ``kernels`` (kernelspec names) round-robin; returns a JSON-able dict.

    NoSuchKernel, before anything is measured, if a kernel has no usable kernelspec; a kernel
    that fails at any step is reported with ``"ok": false`` and its ``error``; the others go
    on. Times are in seconds in the raw sample lists and in ms / µs in the summary.
    ``kernel_dirs``: kernelspec folders searched after the Jupyter path (e.g. the floor's).
    ``cells_by_kernel``: the trivial cell per kernel name for warm-up, round trips and the
    pipelined load (default ``x``, which an echo kernel echoes; a language kernel needs a cell
    that is valid there, e.g. ``print("x")``: its reply must be ``ok``).
    ``stream_cells``: the stream phase's cell template per kernel (see
    :func:`kernelkit.tools.bench.stream_cell`; default ``{payload}``, the text itself).
    """
    bench = BenchRun(
        kernels,
        timeout=timeout,
        progress=progress,
        kernel_dirs=kernel_dirs,
        cells_by_kernel=cells_by_kernel,
        stream_cells=stream_cells,
    )
    try:
        py_samples = bench.starts(starts, python_starts)
        bench.start_all(max(1, clients))
        bench.warmup(warmup)
        bench.round_trips(cells, batch)
        bench.stream(stream_mb, stream_reps)
        if clients and pipeline_requests:
            bench.pipelined(pipeline_requests, pipeline_depth)
        bench.rss_after_load()
    finally:
        bench.close()
    if footprint:
        bench.footprints()
    floor = {label: quantiles(values)["median"] * 1e3 for label, values in py_samples.items()}
    return {
        "meta": machine_info(),
        "settings": {
            "starts": starts,
            "cells": cells,
            "warmup": warmup,
            "stream_mb": stream_mb,
            "stream_reps": stream_reps,
            "clients": clients,
            "pipeline_requests": pipeline_requests,
            "pipeline_depth": pipeline_depth,
        },
        "python_start_ms": floor,
        "kernels": bench.results,
    }

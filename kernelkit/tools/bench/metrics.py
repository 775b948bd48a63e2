"""Process metrics for the benchmark: RSS and CPU time of a process tree, interpreter start-up, installed size.

Needs psutil (the ``bench`` extra) for the process-tree figures.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import time
from collections.abc import Sequence
from typing import Any


def _tree(pid: int) -> list[Any]:
    import psutil

    proc = psutil.Process(pid)
    return [proc, *proc.children(recursive=True)]


def tree_rss(pid: int) -> int:
    import psutil

    total = 0
    for p in _tree(pid):
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


def tree_cpu(pid: int) -> float:
    """CPU seconds (user + system) the process tree has used: steadier than wall time on a busy machine."""
    import psutil

    total = 0.0
    for p in _tree(pid):
        try:
            times = p.cpu_times()
            total += times.user + times.system
        except psutil.Error:
            pass
    return total


def quantiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return {"median": statistics.median(ordered), "p99": p99, "min": ordered[0], "n": len(ordered)}


def python_start_times(python: str, repeat: int) -> dict[str, list[float]]:
    """Seconds for ``python -c pass`` and ``python -c 'import zmq'``: the floor under any Python kernel."""
    out: dict[str, list[float]] = {"python -c pass": [], "python -c 'import zmq'": []}
    for _ in range(repeat):
        for label, code in (("python -c pass", "pass"), ("python -c 'import zmq'", "import zmq")):
            t0 = time.perf_counter()
            subprocess.run([python, "-c", code], check=True)
            out[label].append(time.perf_counter() - t0)
    return out


_FOOTPRINT_SCRIPT = r"""
import importlib.metadata as md, importlib.util, json, os, re, sys
def norm(n): return re.sub(r"[-_.]+", "-", n).lower()
try:
    from packaging.requirements import Requirement
except ImportError:
    Requirement = None
top = sys.argv[1].split(".")[0]
todo = list(md.packages_distributions().get(top, []))
seen, total = set(), 0
while todo:
    name = todo.pop()
    if norm(name) in seen:
        continue
    seen.add(norm(name))
    try:
        dist = md.distribution(name)
    except md.PackageNotFoundError:
        continue
    editable = '"editable": true' in (dist.read_text("direct_url.json") or "")
    for f in dist.files or []:
        try:
            total += os.path.getsize(dist.locate_file(f))
        except OSError:
            pass
    if editable:  # the files are in the source tree: count the package's .py files there
        spec = importlib.util.find_spec(top)
        for root in (spec.submodule_search_locations or []) if spec else []:
            for d, _, files in os.walk(root):
                total += sum(os.path.getsize(os.path.join(d, x)) for x in files if x.endswith(".py"))
    for req in dist.requires or []:
        if Requirement is not None:
            r = Requirement(req)
            if r.marker is None or r.marker.evaluate({"extra": ""}):
                todo.append(r.name)
        elif ";" not in req:
            todo.append(re.match(r"[A-Za-z0-9_.-]+", req).group())
print(json.dumps({"bytes": total, "distributions": sorted(seen)}))
"""


def installed_footprint(argv: Sequence[str]) -> dict[str, Any] | None:
    """Disk size of the distributions (and their requirements) behind ``python -m MODULE`` kernels.

    None where unknown: kernels that are not started as ``-m MODULE`` (scripts, native binaries).
    """
    if "-m" not in argv[:-1]:
        return None
    module = argv[list(argv).index("-m") + 1]
    try:
        out = subprocess.run([argv[0], "-c", _FOOTPRINT_SCRIPT, module], capture_output=True, text=True, timeout=60)
        data = json.loads(out.stdout)
    except (OSError, ValueError, subprocess.SubprocessError):
        return None
    return data if data["distributions"] else None

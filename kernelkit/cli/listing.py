"""``kernelkit list``: every kernelspec on the Jupyter path, in precedence order, problems flagged."""

from __future__ import annotations

import argparse
import json
from typing import Any

from kernelkit.tools import kernelspecs as kernelspec
from kernelkit.tools import probe
from kernelkit.tools.kernelspecs import KernelSpec
from kernelkit.tools.process import format_argv


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "list",
        help="list installed kernels, flagging shadowed and broken ones",
        description="List every kernelspec on the Jupyter path in precedence order, as jupyter_core computes "
        "it: JUPYTER_PATH; then user and env (sys.prefix), user first except inside a virtualenv or conda env "
        "or with JUPYTER_PREFER_ENV_PATH set, where env comes first (JUPYTER_PREFER_ENV_PATH=0 forces user "
        "first); then system. A spec hidden by a same-named one earlier on the path is marked 'shadowed'; one whose "
        "kernel.json is unusable or whose interpreter is missing is marked 'broken'.",
        epilog='--json prints `jupyter kernelspec list --json`\'s schema ({"kernelspecs": {name: {resource_dir, '
        'spec}}}, the specs Jupyter would use) plus "shadowed" and "broken" lists. exit codes: 0 always '
        "(use `kernelkit doctor` for a verdict), 2 usage error",
    )
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.set_defaults(run=run)


def problem(spec: KernelSpec) -> str | None:
    """Why Jupyter could not start this spec without even trying: bad kernel.json, a name jupyter_client
    maps to another kernel, or a missing argv[0]
    (after jupyter_client's substitutions: ``{resource_dir}``, ``{prefix}``, a bare ``python``)."""
    if spec.error:
        return spec.error
    unreachable = kernelspec.unreachable_reason(spec.name)
    if unreachable is not None:
        return f"frontends never start it: {unreachable}"
    program = format_argv(spec.argv[:1], "", spec.resource_dir)[0]
    if probe.resolve_program(program) is None:
        return f"interpreter {spec.argv[0]} not found" + (f" ({program})" if program != spec.argv[0] else "")
    return None


def run(args: argparse.Namespace) -> int:
    specs = kernelspec.find_all()
    if args.json:
        print(json.dumps(as_json(specs), indent=2))
        return 0
    if not specs:
        print("No kernels installed; searched: " + ", ".join(str(d) for d in kernelspec.kernel_dirs()))
        return 0
    rows = [("NAME", "DISPLAY NAME", "LANGUAGE", "WHERE", "FOLDER", "INTERPRETER", "STATUS")]
    for spec in specs:
        status = []
        if spec.shadowed_by is not None:
            status.append(f"shadowed by {spec.shadowed_by}")
        broken = problem(spec)
        if broken:
            status.append(f"broken: {broken}")
        rows.append(
            (
                spec.name,
                spec.display_name or "-",
                spec.language or "-",
                kernelspec.location_label(spec.kernels_dir),
                str(spec.resource_dir),
                spec.argv[0] if spec.argv else "-",
                "; ".join(status) or "ok",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)) + "  " + row[-1])
    return 0


def as_json(specs: list[KernelSpec]) -> dict[str, Any]:
    """jupyter's schema for the specs in use (broken JSON excluded, as Jupyter skips them), plus ours."""
    return {
        "kernelspecs": {
            s.name: {"resource_dir": str(s.resource_dir), "spec": s.to_dict()}
            for s in specs
            if s.shadowed_by is None and not s.error
        },
        "shadowed": [
            {"name": s.name, "resource_dir": str(s.resource_dir), "shadowed_by": str(s.shadowed_by)}
            for s in specs
            if s.shadowed_by is not None
        ],
        "broken": [
            {"name": s.name, "resource_dir": str(s.resource_dir), "problem": problem(s)} for s in specs if problem(s)
        ],
    }

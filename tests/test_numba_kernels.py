"""A static check of the compiled kernels: no cached serial kernel calls a parallel one.

A ``cache=True`` function that calls a ``parallel=True`` function can crash when it is loaded
from numba's cache (numba issue 8578).  geosvc met it: the p-median's fast interchange
segfaulted on a cache left by an earlier version of its module.  Parallel kernels are called
from Python (or from other parallel kernels) only.
"""

from __future__ import annotations

import ast
from pathlib import Path

import geosvc

ROOT = Path(geosvc.__file__).parent


def _njit_flags(fn: ast.FunctionDef) -> dict[str, bool] | None:
    """``{"cache": .., "parallel": ..}`` of an ``@njit(...)`` / ``@nb.njit(...)`` function."""
    for dec in fn.decorator_list:
        call = dec if isinstance(dec, ast.Call) else None
        target = call.func if call else dec
        name = target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", "")
        if name != "njit":
            continue
        flags = {"cache": False, "parallel": False}
        for kw in call.keywords if call else []:
            if kw.arg in flags and isinstance(kw.value, ast.Constant):
                flags[kw.arg] = bool(kw.value.value)
        return flags
    return None


def _kernels() -> dict[tuple[str, str], tuple[ast.FunctionDef, dict[str, bool]]]:
    out = {}
    for path in ROOT.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef):
                flags = _njit_flags(node)
                if flags is not None:
                    out[(str(path.relative_to(ROOT)), node.name)] = (node, flags)
    return out


def test_the_scan_finds_the_kernels() -> None:
    kernels = _kernels()
    assert len(kernels) > 50
    assert sum(f["parallel"] for _, f in kernels.values()) >= 5


def test_no_cached_serial_kernel_calls_a_parallel_kernel() -> None:
    kernels = _kernels()
    parallel = {name for (_, name), (_, f) in kernels.items() if f["parallel"]}
    bad = []
    for (module, name), (fn, flags) in kernels.items():
        if flags["parallel"] or not flags["cache"]:
            continue
        called = {c.func.id for c in ast.walk(fn)
                  if isinstance(c, ast.Call) and isinstance(c.func, ast.Name)}
        bad += [f"{module}:{name} calls {p}" for p in sorted(called & parallel)]
    assert not bad, bad

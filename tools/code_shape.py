"""Code-shape figures for geosvc: module sizes, long functions, wide signatures, private imports.

Run from the repository root::

    python tools/code_shape.py            # the summary
    python tools/code_shape.py --list     # also every offending function and import

What counts
-----------
* long function: a ``def`` spanning more than ``--max-lines`` source lines (default 80);
* wide function: more than ``--max-params`` parameters (default 12; ``self``/``cls`` not counted);
* compiled kernel: a function decorated with a numba compiler (``@njit``, ``@numba.jit``,
  ``@nb.njit(...)``, ``vectorize``, ``guvectorize``, ``cfunc``, ``stencil``), the decorator
  resolved through the module's ``numba`` imports.  Compiled kernels are exempt from the
  line and parameter limits (numba code cannot group arguments in a dataclass and splitting a
  hot loop costs calls), so they are counted and, with ``--list``, listed on their own
  (``kernel-long`` / ``kernel-wide``) instead of among the long and wide functions;
* private cross-package import: ``from A.B._m import x`` where the importer is not inside the
  package ``A.B`` that owns ``_m`` (Python's convention: a leading underscore is private to its
  package and that package's subpackages), or ``from M import _x`` where ``M`` is a public
  module or a private module of another package.
  ``geosvc._errors`` is the package's shared error vocabulary and is not counted.
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections.abc import Iterator
from pathlib import Path

__all__ = ["main", "scan"]

ALLOWED_PRIVATE = {"geosvc._errors"}
#: numba's compiling decorators (a function under one of them is a compiled kernel)
NUMBA_COMPILERS = {"njit", "jit", "vectorize", "guvectorize", "cfunc", "stencil",
                   "generated_jit"}


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _package_of(module: str, path: Path) -> str:
    return module if path.name == "__init__.py" else module.rpartition(".")[0]


def _private_owner(target: str) -> str | None:
    """The package a private module in ``target`` belongs to, or None when ``target`` is public."""
    parts = target.split(".")
    for i, part in enumerate(parts):
        if part.startswith("_") and not part.startswith("__"):
            return ".".join(parts[:i])
    return None


def _functions(tree: ast.AST) -> Iterator[ast.FunctionDef | ast.AsyncFunctionDef]:
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield node


def _numba_names(tree: ast.AST) -> tuple[set[str], set[str]]:
    """Names bound to numba's compilers (``from numba import njit``) and to numba itself."""
    compilers: set[str] = set()
    modules: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules.update(a.asname or a.name for a in node.names if a.name == "numba")
        elif isinstance(node, ast.ImportFrom) and node.module == "numba" and not node.level:
            compilers.update(a.asname or a.name for a in node.names if a.name in NUMBA_COMPILERS)
    return compilers, modules


def _is_compiled(fn: ast.FunctionDef | ast.AsyncFunctionDef, compilers: set[str],
                 modules: set[str]) -> bool:
    """Whether ``fn`` is decorated with a numba compiler (bare or called with options)."""
    for dec in fn.decorator_list:
        target = dec.func if isinstance(dec, ast.Call) else dec
        if isinstance(target, ast.Name) and target.id in compilers:
            return True
        if (isinstance(target, ast.Attribute) and target.attr in NUMBA_COMPILERS
                and isinstance(target.value, ast.Name) and target.value.id in modules):
            return True
    return False


def _n_params(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    a = fn.args
    names = [p.arg for p in [*a.posonlyargs, *a.args, *a.kwonlyargs]]
    names += [p.arg for p in (a.vararg, a.kwarg) if p is not None]
    return len([n for n in names if n not in ("self", "cls")])


def _private_imports(tree: ast.AST, module: str, package: str) -> Iterator[str]:
    for node in ast.walk(tree):
        if not isinstance(node, ast.ImportFrom) or node.module is None or node.level:
            continue
        target = node.module
        if not target.startswith("geosvc") or target in ALLOWED_PRIVATE:
            continue
        owner = _private_owner(target)
        if owner is not None and not (package == owner or package.startswith(owner + ".")):
            yield f"{module}:{node.lineno} from {target} import ..."
            continue
        for alias in node.names:
            if not alias.name.startswith("_") or alias.name.startswith("__") or target == module:
                continue
            # a private submodule of an enclosing package (from pkg import _m) is fine
            if (package == target or package.startswith(target + ".")) and (
                    (Path(*target.split(".")) / alias.name).exists()
                    or Path(*target.split("."), alias.name + ".py").exists()):
                continue
            # a private name of a private module, used inside that module's own package, is
            # that package's internals; anywhere else (or from a public module) it crosses
            target_pkg = target.rpartition(".")[0]
            if owner is not None and package == target_pkg:
                continue
            yield f"{module}:{node.lineno} from {target} import {alias.name}"


def scan(root: Path, package_dir: str = "geosvc", max_lines: int = 80, max_params: int = 12) -> dict:
    """Collect the figures for every ``.py`` file under ``root/package_dir``."""
    modules: list[tuple[int, str]] = []
    long_fns: list[tuple[int, str]] = []
    wide_fns: list[tuple[int, str]] = []
    kernels: list[tuple[int, int, str]] = []
    imports: list[str] = []
    for path in sorted((root / package_dir).rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        rel = str(path.relative_to(root))
        modules.append((len(text.splitlines()), rel))
        tree = ast.parse(text)
        module = _module_name(path, root)
        compilers, numba_modules = _numba_names(tree)
        for fn in _functions(tree):
            n_lines = (fn.end_lineno or fn.lineno) - fn.lineno + 1
            where = f"{rel}:{fn.lineno} {fn.name}"
            if _is_compiled(fn, compilers, numba_modules):
                kernels.append((n_lines, _n_params(fn), where))
                continue
            if n_lines > max_lines:
                long_fns.append((n_lines, where))
            if _n_params(fn) > max_params:
                wide_fns.append((_n_params(fn), where))
        imports.extend(_private_imports(tree, module, _package_of(module, path)))
    return {
        "modules": sorted(modules, reverse=True),
        "long": sorted(long_fns, reverse=True),
        "wide": sorted(wide_fns, reverse=True),
        "kernels": kernels,
        "kernel_long": sorted(((n, w) for n, _, w in kernels if n > max_lines), reverse=True),
        "kernel_wide": sorted(((p, w) for _, p, w in kernels if p > max_params), reverse=True),
        "private_imports": imports,
    }


def main(argv: list[str] | None = None) -> int:
    """Print the summary (and with ``--list`` every offender)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path("."))
    parser.add_argument("--max-lines", type=int, default=80)
    parser.add_argument("--max-params", type=int, default=12)
    parser.add_argument("--top", type=int, default=10, help="how many of the largest modules to show")
    parser.add_argument("--list", action="store_true", help="list every offending function and import")
    args = parser.parse_args(argv)
    s = scan(args.root, max_lines=args.max_lines, max_params=args.max_params)
    total = sum(n for n, _ in s["modules"])
    print(f"modules: {len(s['modules'])}, lines: {total}, over 600 lines: "
          f"{sum(1 for n, _ in s['modules'] if n > 600)}")
    for n, rel in s["modules"][: args.top]:
        print(f"  {n:6d} {rel}")
    print(f"functions over {args.max_lines} lines: {len(s['long'])} (compiled kernels not counted)")
    print(f"functions over {args.max_params} parameters: {len(s['wide'])} "
          "(compiled kernels not counted)")
    print(f"compiled numba kernels (exempt): {len(s['kernels'])}, over {args.max_lines} lines: "
          f"{len(s['kernel_long'])}, over {args.max_params} parameters: "
          f"{len(s['kernel_wide'])}")
    print(f"private cross-package imports: {len(s['private_imports'])}")
    if args.list:
        for key in ("long", "wide", "kernel_long", "kernel_wide"):
            for n, where in s[key]:
                print(f"  {key.replace('_', '-')} {n:4d} {where}")
        for line in s["private_imports"]:
            print(f"  import {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

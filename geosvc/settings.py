"""Run-time settings read from the environment, in one place (read when asked, never at import).

=================  ==========================================================================
variable           meaning
=================  ==========================================================================
``GEOSVC_THREADS``   threads for the GEOS work of the circles (default: the CPUs this process
                     may use); numba kernels follow ``NUMBA_NUM_THREADS``
``GEOSVC_DATA_DIR``  folder of generated sample data (default: ``data/raw`` of the geosvc
                     checkout the command runs in, else ``~/.cache/geosvc``)
=================  ==========================================================================
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from geosvc._errors import InputError

__all__ = ["THREADS_ENV", "DATA_DIR_ENV", "threads", "cpus", "data_dir"]

THREADS_ENV = "GEOSVC_THREADS"
DATA_DIR_ENV = "GEOSVC_DATA_DIR"
_PROJECT_NAME_RE = re.compile(r"""^\s*name\s*=\s*["']geosvc["']""", re.MULTILINE)


def cpus() -> int:
    """CPUs this process may run on (its affinity mask where the OS has one)."""
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
               else (os.cpu_count() or 1))


def threads() -> int:
    """Threads for the GEOS work (GEOS releases the GIL): ``GEOSVC_THREADS`` or all CPUs.

    Raises
    ------
    InputError
        When ``GEOSVC_THREADS`` is set but not a whole number.
    """
    env = os.environ.get(THREADS_ENV)
    if env:
        try:
            return max(1, int(env))
        except ValueError:
            raise InputError(f"{THREADS_ENV}={env!r} is not a whole number of threads") \
                from None
    return cpus()


def data_dir() -> Path:
    """Return (and create) the folder where generated sample data is kept.

    The folder is, in order of preference: the environment variable
    ``GEOSVC_DATA_DIR`` if set; ``data/raw`` in the nearest ancestor of the current
    working directory whose ``pyproject.toml`` declares ``name = "geosvc"``; else
    ``~/.cache/geosvc``.

    Returns
    -------
    pathlib.Path
        The existing folder.
    """
    env = os.environ.get(DATA_DIR_ENV, "").strip()
    if env:
        folder = Path(env).expanduser()
    else:
        folder = Path.home() / ".cache" / "geosvc"
        cwd = Path.cwd().resolve()
        for parent in (cwd, *cwd.parents):
            pyproject = parent / "pyproject.toml"
            try:
                text = pyproject.read_text(encoding="utf-8")
            except OSError:
                continue
            if _PROJECT_NAME_RE.search(text):
                folder = parent / "data" / "raw"
                break
    folder.mkdir(parents=True, exist_ok=True)
    return folder

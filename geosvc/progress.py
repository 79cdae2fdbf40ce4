"""Progress bars and log output for long steps, in the API and the command line.

Long steps (reading a network file, searches over many facilities, service-circle
polygons, the candidate relation, siting) report through :func:`bar`, a ``tqdm`` bar on
standard error.  Whether bars show is decided at call time, never at import:

* :func:`set_progress` ``(True | False)`` turns them on or off for the process
  (``geosvc -q`` turns them off);
* by default (``None``) bars show when standard error is a terminal or the code runs in
  a Jupyter kernel, and never in batch logs, tests or CI.

Log messages go through the ``geosvc`` logger (``logging.getLogger("geosvc")`` and its
children ``geosvc.<module>``).  The library adds no handler; the CLI configures logging,
and in a notebook :func:`show_log` prints INFO messages (step times, what was read).

Examples
--------
>>> from geosvc import progress
>>> progress.set_progress(True)          # doctest: +SKIP
>>> progress.show_log()                  # doctest: +SKIP
>>> for chunk in progress.bar(chunks, desc="searches", unit="facility"):  # doctest: +SKIP
...     ...
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterable, Iterator
from typing import IO, Any, TypeVar

from geosvc._native import quiet_native_stdout

__all__ = ["bar", "chunk_progress", "progress_enabled", "quiet_native_stdout", "reading",
           "set_progress", "show_log", "silence_highs_banner"]

T = TypeVar("T")

_STATE: dict[str, bool | None] = {"enabled": None}
#: Bars for steps shorter than this (seconds) never appear (tqdm's ``delay``).
DELAY_S = 1.0


def set_progress(enabled: bool | None) -> None:
    """Show (``True``), hide (``False``) or auto-decide (``None``, default) progress bars."""
    _STATE["enabled"] = enabled


def _in_jupyter() -> bool:
    shell = sys.modules.get("IPython")
    if shell is None:
        return False
    try:
        ip = shell.get_ipython()  # type: ignore[attr-defined]
    except AttributeError:
        return False
    return ip is not None and type(ip).__name__ == "ZMQInteractiveShell"


def progress_enabled() -> bool:
    """Whether :func:`bar` draws: the :func:`set_progress` choice, else terminal/Jupyter."""
    if _STATE["enabled"] is not None:
        return bool(_STATE["enabled"])
    if os.environ.get("GEOSVC_PROGRESS", "").lower() in ("0", "false", "off", "no"):
        return False
    try:
        tty = sys.stderr.isatty()
    except (AttributeError, ValueError):
        tty = False
    return tty or _in_jupyter()


def bar(iterable: Iterable[T] | None = None, *, total: float | None = None, desc: str,
        unit: str = "it", unit_scale: bool = False) -> Any:
    """A ``tqdm`` bar on standard error (disabled when :func:`progress_enabled` is false).

    Parameters
    ----------
    iterable
        What to iterate over (or ``None`` and call ``.update(n)`` on the returned bar).
    total
        Number of units (default ``len(iterable)`` when it has one).
    desc
        What the step does, e.g. ``"reading bautzen.osm"``.
    unit, unit_scale
        Unit name; ``unit_scale=True`` prints k/M prefixes (bytes).

    Returns
    -------
    tqdm.tqdm
        Use it as an iterable or a context manager; ``update(n)`` advances it.
    """
    from tqdm import tqdm

    return tqdm(iterable, total=total, desc=desc, unit=unit, unit_scale=unit_scale,
                disable=not progress_enabled(), leave=False, delay=DELAY_S,
                file=sys.stderr, dynamic_ncols=True)


@contextlib.contextmanager
def chunk_progress(desc: str, *, unit: str = "it") -> Iterator[Any]:
    """A ``(done, total)`` callback that drives a bar, for functions with ``on_chunk=``.

    Examples
    --------
    >>> with chunk_progress("candidate relation", unit="candidate") as on_chunk:  # doctest: +SKIP
    ...     rel = coverage_relation(net, cands, demand, reach_m, on_chunk=on_chunk)
    """
    with bar(total=None, desc=desc, unit=unit) as b:
        yield _ChunkCallback(b)


class _ChunkCallback:
    """``on_chunk(done, total)`` moving a bar to ``done`` of ``total`` (``.bar`` is it)."""

    def __init__(self, progress: Any) -> None:
        self.bar = progress

    def __call__(self, done: int, total: int) -> None:
        if self.bar.total != total:
            self.bar.total = total
        self.bar.update(max(int(done) - int(self.bar.n), 0))


class _CountingReader:
    """A binary file object that advances a bar by the bytes read from it."""

    def __init__(self, fh: IO[bytes], progress: Any, position: Any = None) -> None:
        self._fh = fh
        self._bar = progress
        self.progress = progress  # the tqdm bar (``.n`` bytes so far)
        self._position = position
        self._last = 0

    def _advance(self, n: int) -> None:
        if self._position is not None:  # compressed: count the bytes of the file on disk
            now = int(self._position())
            self._bar.update(max(now - self._last, 0))
            self._last = now
        else:
            self._bar.update(n)

    def read(self, size: int = -1) -> bytes:
        data = self._fh.read(size)
        self._advance(len(data))
        return data

    def __getattr__(self, name: str) -> Any:
        return getattr(self._fh, name)


@contextlib.contextmanager
def reading(fh: IO[bytes], *, path: str | os.PathLike[str], desc: str) -> Iterator[IO[bytes]]:
    """Wrap an open binary file so reading it advances a bar of the file's size on disk.

    For compressed files (``gzip``/``bz2`` objects with a ``fileobj``/underlying raw
    file) the bar follows the compressed bytes consumed, so it ends at the file size.
    """
    try:
        total: float | None = float(os.path.getsize(path))
    except OSError:
        total = None
    raw = getattr(fh, "fileobj", None) or getattr(getattr(fh, "_fp", None), "raw", None)
    raw = raw if raw is not None and hasattr(raw, "tell") else None
    with bar(total=total, desc=desc, unit="B", unit_scale=True) as b:
        yield _CountingReader(fh, b, raw.tell if raw is not None else None)  # type: ignore[misc]


def show_log(level: int | str = "INFO") -> logging.Handler:
    """Print the ``geosvc`` logger's messages at ``level`` and above on standard error.

    For notebooks and scripts (the CLI configures logging itself).  Calling it again
    replaces the handler it added before instead of adding a second one.

    Returns
    -------
    logging.Handler
        The handler added to ``logging.getLogger("geosvc")``.
    """
    logger = logging.getLogger("geosvc")
    for h in list(logger.handlers):
        if getattr(h, "_geosvc_show_log", False):
            logger.removeHandler(h)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s: %(message)s", "%H:%M:%S"))
    handler._geosvc_show_log = True  # type: ignore[attr-defined]
    logger.addHandler(handler)
    logger.setLevel(level)
    return handler


def silence_highs_banner() -> None:
    """Keep HiGHS's one-per-process "Running HiGHS" banner off standard output.

    HiGHS prints the banner once per process, at the first ``highspy.Highs()``; building
    that first instance under :func:`quiet_native_stdout` uses it up silently.  The CLI
    calls this before commands that may solve an integer programme.
    """
    try:
        import highspy
    except ImportError:  # pragma: no cover - a core dependency
        return
    with quiet_native_stdout():
        highspy.Highs()

"""Run resources: resident memory, per-step time and peak memory, and the memory budget.

* :func:`measure` wraps a block and records its wall time, CPU time and **peak resident
  memory** (exact when the block raises the process's high-water mark ``VmHWM``, else the
  largest RSS a background thread samples every 20 ms).  Nested blocks are folded into their
  parents, so an outer step's peak is never lower than an inner one's.  Records go to the active :class:`StepLog` (opened with
  :func:`collect_steps`), which the pipeline writes into ``summary.json["steps"]``.
* :func:`memory_limit` opens a budget (bytes) that steps read with :func:`budget_bytes` to
  size their chunks; :func:`check_fits` raises :class:`geosvc._errors.MemoryLimitError`
  (exit 2 in the CLI) with the numbers when a step's estimate cannot fit at all.

Like :mod:`geosvc.diagnostics`, the log and the budget live in context variables: library
functions need no extra parameters and nothing happens outside a run.
"""

from __future__ import annotations

import contextvars
import logging
import math
import re
import resource
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from geosvc._errors import ConfigError, MemoryLimitError

__all__ = [
    "StepRecord",
    "StepLog",
    "collect_steps",
    "active_steps",
    "measure",
    "step",
    "rss_bytes",
    "peak_rss_bytes",
    "parse_memory",
    "format_bytes",
    "memory_limit",
    "active_limit",
    "budget_bytes",
    "available_bytes",
    "check_fits",
]

_STATUS = Path("/proc/self/status")
#: Step lines keep the logger name they always had (notebook progress shows it).
_STEP_LOG = logging.getLogger("geosvc.pipeline")
_MB = 2**20


def _status_kb(field_name: str) -> int | None:
    try:
        text = _STATUS.read_text()
    except OSError:
        return None
    m = re.search(rf"^{field_name}:\s+(\d+)\s+kB", text, flags=re.M)
    return int(m.group(1)) if m else None


def rss_bytes() -> int:
    """Current resident set size of this process (bytes)."""
    kb = _status_kb("VmRSS")
    if kb is not None:
        return kb * 1024
    import psutil

    return int(psutil.Process().memory_info().rss)


def peak_rss_bytes() -> int:
    """Resident high-water mark since the last reset (``VmHWM``; else ``ru_maxrss``)."""
    kb = _status_kb("VmHWM")
    if kb is None:
        kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kB on Linux
    return int(kb) * 1024


# ------------------------------------------------------------------------------------------
# step records
# ------------------------------------------------------------------------------------------
@dataclass
class StepRecord:
    """Time and memory of one step (``peak_rss_mb``: the process's peak during the step)."""

    name: str
    seconds: float
    cpu_seconds: float
    rss_start_mb: float
    rss_end_mb: float
    peak_rss_mb: float
    depth: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (rounded)."""
        return {"name": self.name, "seconds": round(self.seconds, 3),
                "cpu_seconds": round(self.cpu_seconds, 3),
                "rss_start_mb": round(self.rss_start_mb, 1),
                "rss_end_mb": round(self.rss_end_mb, 1),
                "peak_rss_mb": round(self.peak_rss_mb, 1), "depth": self.depth}


@dataclass
class StepLog:
    """The steps of one run, in the order they finished; the run's overall peak."""

    steps: list[StepRecord] = field(default_factory=list)
    peak_bytes: int = 0

    def to_list(self) -> list[dict[str, Any]]:
        """Every step as a JSON-ready dict."""
        return [s.to_dict() for s in self.steps]

    @property
    def peak_rss_mb(self) -> float:
        """Largest resident size seen by any step of the run (MiB)."""
        return max([self.peak_bytes / _MB] + [s.peak_rss_mb for s in self.steps])


_STEPS: contextvars.ContextVar[StepLog | None] = contextvars.ContextVar("geosvc_steps",
                                                                        default=None)


def active_steps() -> StepLog | None:
    """The step log of the current run, or ``None`` outside :func:`collect_steps`."""
    return _STEPS.get()


@contextmanager
def collect_steps(log: StepLog | None = None) -> Iterator[StepLog]:
    """Collect the step records of the blocks measured inside (nested calls reuse the outer)."""
    outer = _STEPS.get()
    use = log if log is not None else (outer if outer is not None else StepLog())
    token = _STEPS.set(use)
    try:
        yield use
    finally:
        _STEPS.reset(token)


class _Sampler:
    """One background thread folding the RSS (every 20 ms) into the open blocks' peaks."""

    def __init__(self) -> None:
        self.open: list[list[int]] = []  # peak accumulators, outermost first
        self.lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def fold(self, value: int) -> None:
        for acc in self.open:
            acc[0] = max(acc[0], value)

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            rss = rss_bytes()
            with self.lock:
                self.fold(rss)

    def push(self, acc: list[int]) -> None:
        with self.lock:
            self.open.append(acc)
            if self._thread is None:
                self._stop.clear()
                self._thread = threading.Thread(target=self._run, name="geosvc-rss",
                                                daemon=True)
                self._thread.start()

    def pop(self, acc: list[int]) -> None:
        with self.lock:
            del self.open[next(i for i, a in enumerate(self.open) if a is acc)]
            thread = self._thread if not self.open else None
            if thread is not None:
                self._stop.set()
                self._thread = None
        if thread is not None:
            thread.join()


_SAMPLER = _Sampler()


@contextmanager
def measure(name: str) -> Iterator[StepRecord]:
    """Measure a block: wall and CPU time, RSS before/after and the peak RSS during it.

    The peak is exact when the block sets a new high-water mark for the process (``VmHWM``
    grew during it: the mark is the peak); otherwise it is the largest RSS sampled every
    20 ms.  The process's high-water mark itself is never reset, so outside tools
    (``/usr/bin/time -v``) still see the true peak.  The record is appended to the active
    :class:`StepLog` (if any) when the block ends, also when it raises.
    """
    start = rss_bytes()
    rec = StepRecord(name, math.nan, math.nan, start / _MB, math.nan, math.nan,
                     depth=len(_SAMPLER.open))
    hwm0 = peak_rss_bytes()
    acc = [start]
    _SAMPLER.push(acc)
    t0, c0 = time.perf_counter(), time.process_time()
    try:
        yield rec
    finally:
        rec.seconds = time.perf_counter() - t0
        rec.cpu_seconds = time.process_time() - c0
        hwm1 = peak_rss_bytes()
        end = rss_bytes()
        _SAMPLER.pop(acc)
        peak = max(acc[0], end, hwm1 if hwm1 > hwm0 else 0)
        with _SAMPLER.lock:
            _SAMPLER.fold(peak)  # an inner block's peak is its parents' too
        rec.rss_end_mb = end / _MB
        rec.peak_rss_mb = peak / _MB
        log = _STEPS.get()
        if log is not None:
            log.steps.append(rec)
            log.peak_bytes = max(log.peak_bytes, hwm1)


@contextmanager
def step(label: str) -> Iterator[None]:
    """Run a pipeline step: log its start, then its time and peak resident memory.

    The CLI shows these lines as progress; inside :func:`collect_steps` (every ``geosvc
    run``/``demo``) each step also lands in ``summary.json["steps"]``.
    """
    _STEP_LOG.info("%s ...", label)
    with measure(label) as rec:
        yield
    _STEP_LOG.info("%s done (%.1f s, cpu %.1f s, peak %s resident)", label, rec.seconds,
                   rec.cpu_seconds, format_bytes(rec.peak_rss_mb * 2**20))


# ------------------------------------------------------------------------------------------
# memory budget
# ------------------------------------------------------------------------------------------
_UNITS = {"": 1, "b": 1, "k": 10**3, "kb": 10**3, "kib": 2**10, "m": 10**6, "mb": 10**6,
          "mib": 2**20, "g": 10**9, "gb": 10**9, "gib": 2**30, "t": 10**12, "tb": 10**12,
          "tib": 2**40}


def parse_memory(value: str | int | float) -> int:
    """Bytes from ``"8GB"``, ``"512 MiB"``, ``"1.5g"`` or a number of bytes.

    Raises
    ------
    ConfigError
        When the text is not a positive size with a known unit.
    """
    if isinstance(value, int | float) and not isinstance(value, bool):
        if value > 0 and math.isfinite(value):
            return int(value)
        raise ConfigError(f"memory limit {value!r}: must be a positive size, e.g. '8GB'")
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*", str(value))
    unit = m.group(2).lower() if m else ""
    if m is None or unit not in _UNITS or float(m.group(1)) <= 0:
        raise ConfigError(f"memory limit {value!r}: expected a size such as '8GB', '512MB' "
                          "or '1.5GiB'")
    return int(float(m.group(1)) * _UNITS[unit])


def format_bytes(n: float) -> str:
    """``1.9 GB``-style text (decimal units, as users write limits)."""
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n:.0f} B"


_LIMIT: contextvars.ContextVar[int | None] = contextvars.ContextVar("geosvc_memory_limit",
                                                                    default=None)


def active_limit() -> int | None:
    """The memory limit (bytes) of the current run, ``None`` when none was set."""
    return _LIMIT.get()


@contextmanager
def memory_limit(limit: str | int | float | None) -> Iterator[int | None]:
    """Open a memory budget (bytes or ``"8GB"``) for the block; ``None`` keeps the outer one.

    Without any limit the budget is the machine's physical memory.
    """
    token = _LIMIT.set(_LIMIT.get() if limit is None else parse_memory(limit))
    try:
        yield _LIMIT.get()
    finally:
        _LIMIT.reset(token)


def _physical_bytes() -> int:
    try:
        import os

        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return 8 * 10**9


def budget_bytes() -> int:
    """The run's memory budget: the active limit, else the machine's physical memory."""
    lim = _LIMIT.get()
    return lim if lim is not None else _physical_bytes()


def available_bytes(*, share: float = 1.0, floor: int = 64 * _MB) -> int:
    """What a step may still allocate: ``share`` of (budget - current RSS), at least ``floor``.

    Steps size their chunks with it (e.g. pairs per chunk = available / bytes per pair).
    """
    free = budget_bytes() - rss_bytes()
    return max(int(floor), int(free * share))


def check_fits(what: str, need_bytes: float, *, fix: str = "") -> None:
    """Raise :class:`MemoryLimitError` when ``need_bytes`` cannot fit in the active limit.

    Only an explicit limit is enforced (without one, the machine decides).  The message
    gives the estimate, the limit and what to do.
    """
    lim = _LIMIT.get()
    if lim is None:
        return
    have = lim - rss_bytes()
    if need_bytes > have:
        raise MemoryLimitError(
            f"{what} needs about {format_bytes(need_bytes)} but the memory limit "
            f"{format_bytes(lim)} leaves {format_bytes(max(have, 0))}"
            + (f"; {fix}" if fix else "; raise --memory-limit (config [run] memory_limit)"))

"""Timing, peak-memory and result bookkeeping shared by the benchmark suites.

Peak memory is the process's resident-set high-water mark (``VmHWM``), reset before every
measured step by writing ``5`` to ``/proc/self/clear_refs`` (Linux >= 4.0).  Where that is
not allowed, a psutil thread samples the RSS every 5 ms instead.  Every case runs in its own
process (see :mod:`benchmarks.run`), so one case's garbage never inflates another's figures.
"""

from __future__ import annotations

import gc
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from geosvc.resources import peak_rss_bytes, rss_bytes

__all__ = ["DeadlineExceeded", "Meter", "Recorder", "Timing", "call_with_deadline", "rss_mb"]

_CLEAR = Path("/proc/self/clear_refs")


def rss_mb() -> float:
    """Current resident set size in MiB (:func:`geosvc.resources.rss_bytes`)."""
    return rss_bytes() / 2**20


def _reset_hwm() -> bool:
    try:
        _CLEAR.write_text("5")
    except OSError:
        return False
    return True


class Meter:
    """Wall-clock time and peak RSS of a block (``with Meter() as m: ...``)."""

    def __init__(self) -> None:
        self.seconds = math.nan
        self.base_mb = math.nan
        self.peak_mb = math.nan
        self._sampler: threading.Thread | None = None
        self._stop = threading.Event()
        self._sampled = 0.0

    def _sample(self) -> None:
        import psutil

        proc = psutil.Process()
        while not self._stop.is_set():
            self._sampled = max(self._sampled, proc.memory_info().rss / 2**20)
            self._stop.wait(0.005)

    def __enter__(self) -> Meter:
        gc.collect()
        self.base_mb = rss_mb()
        if not _reset_hwm():  # no resettable high-water mark: sample instead
            self._sampled = self.base_mb
            self._sampler = threading.Thread(target=self._sample, daemon=True)
            self._sampler.start()
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self._t0
        if self._sampler is not None:
            self._stop.set()
            self._sampler.join()
            self.peak_mb = max(self._sampled, rss_mb())
        else:
            self.peak_mb = peak_rss_bytes() / 2**20

    @property
    def delta_mb(self) -> float:
        """Peak during the block minus the RSS before it."""
        return max(0.0, self.peak_mb - self.base_mb)


@dataclass
class Timing:
    """Best-of-``runs`` wall time; memory of the first run."""

    seconds: float
    runs: int
    first_s: float
    peak_mb: float
    delta_mb: float


def measure(fn: Callable[[], Any], *, repeat: int = 3, budget_s: float = 5.0
            ) -> tuple[Timing, Any]:
    """Run ``fn`` at least once and up to ``repeat`` times while under ``budget_s`` in total."""
    with Meter() as m:
        out = fn()
    times = [m.seconds]
    while len(times) < repeat and sum(times) < budget_s:
        del out
        gc.collect()
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return Timing(min(times), len(times), times[0], m.peak_mb, m.delta_mb), out


class Recorder:
    """Collects the timing rows, goal comparisons and notes of one case."""

    def __init__(self, case: str, instance: str) -> None:
        self.case = case
        self.instance = instance
        self.rows: dict[str, dict[str, Any]] = {}
        self.comparisons: list[dict[str, Any]] = []
        self.notes: list[str] = []
        self.info: dict[str, Any] = {}

    # -- timings --------------------------------------------------------------------------
    def timed(self, key: str, impl: str, fn: Callable[[], Any], *, task: str, threads: int | str,
              repeat: int = 3, budget_s: float = 5.0, note: str = "") -> Any:
        """Measure ``fn`` and store it as row ``key``; return its result."""
        timing, out = measure(fn, repeat=repeat, budget_s=budget_s)
        self.add(key, impl, timing.seconds, task=task, threads=threads, peak_mb=timing.peak_mb,
                 delta_mb=timing.delta_mb, runs=timing.runs, first_s=timing.first_s, note=note)
        return out

    def add(self, key: str, impl: str, seconds: float, *, task: str, threads: int | str,
            peak_mb: float | None = None, delta_mb: float | None = None, runs: int = 1,
            note: str = "", **extra: Any) -> None:
        """Store a row (measured elsewhere, derived or scaled)."""
        print(f"[{self.case}] {key}: {impl}: {seconds:.3f} s"
              + (f", peak {peak_mb:.0f} MB" if peak_mb is not None else ""), flush=True)
        self.rows[key] = {
            "key": key, "task": task, "impl": impl, "seconds": float(seconds),
            "threads": threads, "peak_mb": peak_mb, "delta_mb": delta_mb, "runs": runs,
            "note": note, **extra,
        }

    def seconds(self, key: str) -> float:
        """Seconds of a stored row."""
        return float(self.rows[key]["seconds"])

    # -- goals ----------------------------------------------------------------------------
    def compare(self, task: str, ours: str, peer: str, *, goal: str | None = None,
                min_speedup: float | None = None, max_slowdown: float | None = None,
                exact: bool | None = None, exactness: str = "", note: str = "") -> None:
        """Compare row ``ours`` (geosvc) with row ``peer``.

        ``min_speedup``: goal met when peer/geosvc >= value.  ``max_slowdown``: goal met when
        geosvc/peer <= value (for the bare floor).  ``exact=False`` fails a goal that needs
        equal results; ``exact=None`` with a peer that did not finish leaves it undetermined.

        A row that did not finish has infinite seconds and, when known, ``lower_bound_s`` (how
        long it ran before it was stopped).  geosvc not finishing misses the goal; a peer not
        finishing gives a lower bound on the ratio: the goal is met when even that bound
        reaches it, else the verdict is undetermined.
        """
        a, b = self.seconds(ours), self.seconds(peer)
        peer_lb = self.rows[peer].get("lower_bound_s")
        ratio_is_lb = not math.isfinite(b) and peer_lb is not None and math.isfinite(a)
        if ratio_is_lb:
            ratio = peer_lb / a if a > 0 else math.inf
        elif math.isfinite(a) and math.isfinite(b):
            ratio = b / a if a > 0 else math.inf
        else:
            ratio = math.nan
        met: bool | None = None
        if min_speedup is not None or max_slowdown is not None:
            if not math.isfinite(a):
                met = False
            elif min_speedup is not None:
                met = ratio >= min_speedup if math.isfinite(ratio) or ratio_is_lb else None
                if ratio_is_lb and not met:
                    met = None
            else:
                met = (a / b if b > 0 else math.inf) <= max_slowdown if math.isfinite(b) \
                    else None
            if met is not None and exact is False:
                met = False
            if met and exact is None and ratio_is_lb:
                met = None  # equal results cannot be checked against an unfinished peer
        verdict = None if goal is None else (
            "MET" if met else "MISSED" if met is False else "UNDETERMINED")
        self.comparisons.append({
            "task": task, "ours": ours, "peer": peer, "geosvc_s": a, "peer_s": b,
            "ratio": ratio, "ratio_is_lower_bound": ratio_is_lb, "goal": goal, "met": met,
            "verdict": verdict, "exactness": exactness, "note": note,
        })

    def check(self, task: str, *, goal: str, met: bool | None, result: str,
              ours: str | None = None, exactness: str = "", note: str = "") -> None:
        """A goal that is not a speed ratio (optima reproduced, a gap reached, ...)."""
        self.comparisons.append({
            "task": task, "ours": ours, "peer": None,
            "geosvc_s": self.seconds(ours) if ours else None, "peer_s": None, "ratio": None,
            "goal": goal, "met": met,
            "verdict": "MET" if met else "MISSED" if met is False else "UNDETERMINED",
            "exactness": exactness, "note": note, "result": result,
        })

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready content."""
        return {
            "case": self.case, "instance": self.instance, "info": self.info,
            "rows": list(self.rows.values()), "comparisons": self.comparisons,
            "notes": self.notes,
        }


class DeadlineExceeded(RuntimeError):
    """A call did not return before its wall-clock deadline (its process was terminated)."""


def _deadline_worker(conn: Any, target: Callable[..., Any], args: tuple[Any, ...],
                     kwargs: dict[str, Any], warm: Callable[[], Any] | None) -> None:
    import warnings

    warnings.simplefilter("ignore")
    try:
        if warm is not None:
            warm()
        with Meter() as m:
            out = target(*args, **kwargs)
        conn.send(("ok", out, m.seconds, m.peak_mb, m.delta_mb))
    except BaseException as exc:  # reported to the parent
        conn.send(("error", f"{type(exc).__name__}: {exc}", math.nan, math.nan, math.nan))
    finally:
        conn.close()


def call_with_deadline(target: Callable[..., Any], *args: Any, deadline_s: float,
                       warm: Callable[[], Any] | None = None, **kwargs: Any
                       ) -> tuple[Any, float, float, float]:
    """Run ``target(*args, **kwargs)`` in a fresh (spawned) process with a hard deadline.

    Solvers promise time limits that some phases (e.g. presolve) do not check; this keeps the
    suite's total time bounded and reports such a run as not finished.  ``target`` and ``warm``
    must be importable module-level functions; ``warm`` runs first, untimed (JIT caches).

    Returns
    -------
    result, seconds, peak_mb, delta_mb
        Timing and peak RSS measured inside the worker around the call only.

    Raises
    ------
    DeadlineExceeded
        When the call did not return within ``deadline_s`` (measured from the call's start in
        the worker, plus a fixed 60 s allowance for process start, transfer and warm-up).
    RuntimeError
        When the call raised (message of the original exception).
    """
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    recv, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_deadline_worker, args=(send, target, args, kwargs, warm),
                       daemon=True)
    proc.start()
    send.close()
    try:
        if not recv.poll(deadline_s + 60.0):
            raise DeadlineExceeded(f"no result after {deadline_s:.0f} s (+60 s start-up)")
        status, out, secs, peak, delta = recv.recv()
    except EOFError as exc:
        raise RuntimeError(f"worker died (exit code {proc.exitcode})") from exc
    finally:
        if proc.is_alive():
            proc.terminate()
            proc.join(10)
            if proc.is_alive():
                proc.kill()
        proc.join()
        recv.close()
    if status != "ok":
        raise RuntimeError(out)
    return out, secs, peak, delta

"""Run diagnostics: warnings are data.

A result that is valid but suspicious (a category with no facility, facilities that cannot be
snapped, a fragmented network, a connectivity decision taken for the user) is reported with
:func:`warn`.  Each warning

* is logged on the ``geosvc`` logger at WARNING level (the CLI prints it as one line
  beginning ``warning:``; in a notebook Python's last-resort handler shows it);
* is appended to the active :class:`Diagnostics` collector, if a run opened one with
  :func:`collect`, so the pipeline can write it into ``summary.json["warnings"]`` and
  ``--strict`` can turn it into exit 2.

Library functions never need a collector passed in: the collector lives in a context variable
(safe with threads and Dask tasks, which each run their own context).

Examples
--------
>>> from geosvc import diagnostics
>>> with diagnostics.collect() as diag:
...     diagnostics.warn("no_facilities", "elderly_care: 0 facilities", category="elderly_care")
>>> [w.code for w in diag.warnings]
['no_facilities']
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

__all__ = ["RunWarning", "Diagnostics", "collect", "warn", "active", "suppressed"]

log = logging.getLogger("geosvc")


@dataclass(frozen=True)
class RunWarning:
    """One warning: a stable ``code`` for machines, a one-line ``message`` for people."""

    code: str
    message: str
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form for ``summary.json["warnings"]``."""
        return {"code": self.code, "message": self.message, **self.data}


@dataclass
class Diagnostics:
    """Collects the warnings of one run (see :func:`collect`)."""

    warnings: list[RunWarning] = field(default_factory=list)

    def to_list(self) -> list[dict[str, Any]]:
        """Every warning as a JSON-ready dict, in the order raised (duplicates removed)."""
        seen: set[tuple[str, str]] = set()
        out = []
        for w in self.warnings:
            if (w.code, w.message) not in seen:
                seen.add((w.code, w.message))
                out.append(w.to_dict())
        return out


_ACTIVE: contextvars.ContextVar[Diagnostics | None] = contextvars.ContextVar(
    "geosvc_diagnostics", default=None)


_SUPPRESSED: contextvars.ContextVar[frozenset[str]] = contextvars.ContextVar(
    "geosvc_suppressed_warnings", default=frozenset())


@contextmanager
def suppressed(*codes: str) -> Iterator[None]:
    """Drop warnings with these codes inside the block (a later step reports the final state).

    For example a reader that labels the components of a raw graph and then filters
    fragments reports the components once, after the filter.
    """
    token = _SUPPRESSED.set(_SUPPRESSED.get() | frozenset(codes))
    try:
        yield
    finally:
        _SUPPRESSED.reset(token)


def active() -> Diagnostics | None:
    """The collector of the current run, or ``None`` outside :func:`collect`."""
    return _ACTIVE.get()


@contextmanager
def collect(diag: Diagnostics | None = None) -> Iterator[Diagnostics]:
    """Open a collector for the warnings raised inside the ``with`` block.

    Nested calls reuse the outer collector unless one is passed explicitly, so a pipeline
    step that opens its own collector still reports to the run.
    """
    outer = _ACTIVE.get()
    use = diag if diag is not None else (outer if outer is not None else Diagnostics())
    token = _ACTIVE.set(use)
    try:
        yield use
    finally:
        _ACTIVE.reset(token)


def warn(code: str, message: str, **data: Any) -> RunWarning:
    """Report a valid but suspicious condition (logged, and collected when a run is active).

    Parameters
    ----------
    code
        Stable machine-readable key, e.g. ``"no_facilities"``, ``"network_components"``.
    message
        One line for a person: what is suspicious, where, and what to check.
    **data
        JSON-serialisable details stored with the warning in ``summary.json``.
    """
    w = RunWarning(code, message, dict(data))
    if code in _SUPPRESSED.get():
        return w
    log.warning("%s", message)
    diag = _ACTIVE.get()
    if diag is not None:
        diag.warnings.append(w)
    return w

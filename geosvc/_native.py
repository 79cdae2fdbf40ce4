"""Native-library plumbing with no geosvc dependencies (usable from any package).

:func:`quiet_native_stdout` keeps text that C/C++ libraries write straight to file
descriptor 1 (HiGHS's "Running HiGHS" banner) off a quiet run; :func:`new_highs` builds a
``highspy.Highs`` without that banner ever reaching the user's terminal or notebook.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
from collections.abc import Iterator
from typing import Any

__all__ = ["quiet_native_stdout", "new_highs"]


@contextlib.contextmanager
def quiet_native_stdout() -> Iterator[None]:
    """Silence writes to file descriptor 1 from native code (e.g. the HiGHS banner).

    ``highspy.Highs()`` prints its "Running HiGHS ..." banner from C++ while it is being
    constructed, before ``output_flag`` can be set, so only a descriptor-level redirect
    keeps it off a ``-q`` run.  Python's own ``sys.stdout`` is flushed first and works as
    before afterwards.
    """
    try:
        sys.stdout.flush()
        fd = sys.stdout.fileno()
    except (AttributeError, ValueError, OSError):  # no real descriptor (e.g. captured)
        fd = 1
    try:
        saved = os.dup(fd)
    except OSError:
        yield
        return
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), fd)
            try:
                yield
            finally:
                os.dup2(saved, fd)
    finally:
        os.close(saved)


@functools.cache
def _banner_used_up() -> bool:
    """Build one ``Highs`` instance silently: HiGHS prints its banner once per process."""
    import highspy

    with quiet_native_stdout():
        highspy.Highs()
    return True


def new_highs() -> Any:
    """A fresh ``highspy.Highs`` instance; the first one of the process is built silently."""
    import highspy

    _banner_used_up()
    return highspy.Highs()

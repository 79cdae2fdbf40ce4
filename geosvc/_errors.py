"""Exception classes used across geosvc.

Each subclasses a built-in so callers can catch either the specific class or the
built-in.  Messages say what was wrong, where (file, row, column, key) and how to fix it;
the CLI prints them as one line and exits with code 2.
"""

from __future__ import annotations

__all__ = [
    "GeosvcError",
    "InputError",
    "CRSError",
    "NetworkError",
    "ConfigError",
    "InfeasibleError",
    "MemoryLimitError",
]


class GeosvcError(Exception):
    """Base class for every error geosvc raises on purpose."""


class InputError(GeosvcError, ValueError):
    """A user-supplied file, frame, column or value is missing or malformed."""


class CRSError(InputError):
    """A coordinate reference system is missing, unknown or unsuitable (e.g. degrees for metres)."""


class NetworkError(InputError):
    """A street network is empty, unreadable or unusable for the requested analysis."""


class ConfigError(InputError):
    """A configuration file or profile override names an unknown key or an invalid value."""


class InfeasibleError(GeosvcError, RuntimeError):
    """A model cannot be solved as asked (and no partial answer makes sense)."""


class MemoryLimitError(GeosvcError, MemoryError):
    """An input cannot be analysed within the run's memory limit (the message gives the sizes)."""

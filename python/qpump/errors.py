"""Exceptions raised by qpump.

Every error caused by user input is a :class:`ValueError` subclass whose message names the
parameter, the value received and what is allowed, so that the command line can print it as one
line without a traceback.
"""

from __future__ import annotations

__all__ = [
    "QpumpError",
    "InvalidParameterError",
    "InvalidStateError",
    "HierarchyTooLargeError",
    "IntegrationError",
]


class QpumpError(Exception):
    """Base class of every exception raised on purpose by qpump."""


class InvalidParameterError(QpumpError, ValueError):
    """A parameter is outside its allowed range (the message names it, its value and the range)."""


class InvalidStateError(QpumpError, ValueError):
    """A density matrix violates a physical condition (Hermiticity, trace, positivity, Eq. 9)."""


class HierarchyTooLargeError(InvalidParameterError):
    """The HEOM hierarchy would need more memory than allowed; lower depth or n_exp."""


class IntegrationError(QpumpError, RuntimeError):
    """Time integration failed (e.g. a non-finite value appeared)."""

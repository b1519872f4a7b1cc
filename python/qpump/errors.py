"""Exceptions raised by qpump.

Two families, told apart by the command line's exit status:

- bad input (exit status 2): :class:`InvalidParameterError`, :class:`InvalidStateError` and
  :class:`HierarchyTooLargeError`, all :class:`ValueError` subclasses whose message names the
  parameter, the value received and what is allowed; and :class:`MissingExtraError`, a command
  whose optional dependencies are not installed (the message names the extra);
- a computation that failed its own checks (exit status 3): :class:`ComputationError` and its
  subclasses :class:`IntegrationError` (the integrator gave up), :class:`InvariantViolationError`
  (a result broke trace, Hermiticity, positivity, the first law or the second law) and
  :class:`OutputWriteError` (a result could not be written).
"""

from __future__ import annotations

__all__ = [
    "QpumpError",
    "InvalidParameterError",
    "InvalidStateError",
    "HierarchyTooLargeError",
    "MissingExtraError",
    "ComputationError",
    "IntegrationError",
    "InvariantViolationError",
    "OutputWriteError",
    "NotConvergedError",
    "TruncationWarning",
]


class QpumpError(Exception):
    """Base class of every exception raised on purpose by qpump."""


class InvalidParameterError(QpumpError, ValueError):
    """A parameter is outside its allowed range (the message names it, its value and the range)."""


class InvalidStateError(QpumpError, ValueError):
    """A density matrix violates a physical condition (Hermiticity, trace, positivity, Eq. 9)."""


class HierarchyTooLargeError(InvalidParameterError):
    """The run would need more memory than allowed; lower depth or n_exp, or raise the limit."""


class MissingExtraError(QpumpError, ImportError):
    """A command needs an optional dependency that is not installed (the message names the extra)."""


class ComputationError(QpumpError, RuntimeError):
    """A computation did not produce a trustworthy result (exit status 3 on the command line)."""


class IntegrationError(ComputationError):
    """Time integration failed (e.g. a non-finite value appeared)."""


class InvariantViolationError(ComputationError):
    """A computed result breaks a law it must obey.

    Attributes
    ----------
    check : str
        The invariant that failed (e.g. ``"first law"``, ``"positivity"``).
    value : float
        The measured violation.
    tolerance : float
        The largest violation allowed.
    detail : str
        What was measured where, and the likely cause.
    """

    def __init__(self, check: str, value: float, tolerance: float, detail: str) -> None:
        self.check = check
        self.value = value
        self.tolerance = tolerance
        self.detail = detail
        super().__init__(f"check failed: {check}: {detail}")


class OutputWriteError(ComputationError):
    """A result could not be written (permissions, a full disk, ...)."""


class NotConvergedError(ComputationError):
    """An automatic truncation (``depth="auto"``, ``n_exp="auto"``) reached a limit before its
    quantity stopped changing; ``result`` is the :class:`qpump.convergence.ConvergenceResult`,
    with the table of every run."""

    def __init__(self, message: str, result: object) -> None:
        self.result = result
        super().__init__(message)


class TruncationWarning(UserWarning):
    """A bath expansion that misrepresents its bath at the system's frequencies (its spectrum or
    detailed balance off by more than 1 %, see :func:`qpump.convergence.check_model`): the run
    goes on, the numbers may be wrong."""

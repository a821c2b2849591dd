"""Exceptions raised by r2mri.

Every problem with user-supplied input (files, arguments, protocols) raises
:class:`InputError`, a :class:`ValueError`, whose message names the file,
series or argument and what is wrong with it, in one line.
"""

from __future__ import annotations

__all__ = ["InputError", "ProtocolError", "CalibrationError"]


class InputError(ValueError):
    """Bad input: the message names the file/series/argument and the problem."""


class ProtocolError(InputError):
    """The acquisition has an error-level protocol finding (use ``force`` to override)."""


class CalibrationError(InputError):
    """A calibration was requested outside its field strength, sequence or quantity."""

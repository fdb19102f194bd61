"""Kernel status codes as a Python flag enum (the values come from ``arqon.kernels``)."""

import enum

from arqon.kernels import _status


class Status(enum.IntFlag):
    """What a tuner, telemetry or selector call did: ``OK`` (zero), or one or more flags; ``arqon.kernels`` returns the same
    values as plain integers."""

    OK = _status.OK
    NONFINITE = _status.NONFINITE
    NOT_ASKED = _status.NOT_ASKED
    BUDGET_EXHAUSTED = _status.BUDGET_EXHAUSTED
    BAD_STATE = _status.BAD_STATE
    DROPPED = _status.DROPPED
    DRIFT = _status.DRIFT
    WAITING = _status.WAITING
    REOPENED = _status.REOPENED
    NONE_ELIGIBLE = _status.NONE_ELIGIBLE
    BAD_ARGUMENT = _status.BAD_ARGUMENT

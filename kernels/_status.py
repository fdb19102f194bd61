"""Status bit flags returned by kernels. Zero means success; several flags may be set at once."""

OK = 0  # success: no flag set
NONFINITE = 1  # the told value was NaN or infinite: rejected, state unchanged
NOT_ASKED = 2  # tell without an outstanding ask: ignored, state unchanged
BUDGET_EXHAUSTED = 4  # the evaluation budget is spent: nothing new is proposed
BAD_STATE = 8  # the array is not a tuner state (wrong magic): nothing was read or written
DROPPED = 16  # the telemetry ring was full (drop-newest policy): the record was not written
DRIFT = 32  # a drift detector fired
WAITING = 64  # the objective's window holds too few samples yet: nothing was told
REOPENED = 128  # drift on the objective: the tuner re-opened exploration
NONE_ELIGIBLE = 256  # no arm was eligible (mask and constraints): the selector returned its fallback arm
BAD_ARGUMENT = 512  # an argument's length or range is wrong (an arm, a reward, a mask, a context): ignored, state unchanged

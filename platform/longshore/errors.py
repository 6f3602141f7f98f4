"""Every error Longshore raises on purpose derives from LongshoreError.

A job whose own code fails is not an error: it is a result recorded on the job
(see `status.JobStatus`). These classes are for the caller's mistakes and the
platform's own failures.
"""


class LongshoreError(Exception):
    """Base class of all Longshore errors."""


class ConfigError(LongshoreError):
    """A setting from the environment is missing or malformed; names the variable."""


class InvalidJob(LongshoreError, ValueError):
    """A submitted job is malformed (unknown stack, bad limit, payload too big …)."""


class UnknownStack(InvalidJob):
    """The job names a stack the manifest does not define."""


class JobNotFound(LongshoreError, LookupError):
    """No job with that id is in the store."""


class WaitTimeout(LongshoreError, TimeoutError):
    """A caller's wait for a job ran out before the job finished."""

"""Errors that are the user's to fix.

Anything raised as a :class:`UserError` is printed by the command line as one line
(``condsynth: error: <message>``) with a non-zero exit code and no traceback. Messages name the
file or key at fault and what is wrong with it.
"""


class UserError(Exception):
    """A mistake in the user's input: a missing or corrupt file, a bad config key, a wrong value."""


class ConfigError(UserError):
    """An invalid configuration: unknown key, wrong type, missing required value."""


class MissingWeightsError(UserError):
    """A pretrained weight file that is needed but not present on this machine."""


class CheckpointError(UserError):
    """A checkpoint that is missing, incomplete or belongs to another model."""


class TrainingDiverged(RuntimeError):
    """A loss became NaN or Inf. The last good checkpoint is kept untouched."""

"""User-facing errors.

An ``EvalsuiteError`` is something the user can fix (a bad path, an empty prompt file, a
missing weight file). The CLI prints its message as one paragraph, without a traceback, and
exits with status 2. Anything else is a bug and keeps its traceback.
"""


class EvalsuiteError(Exception):
    """An error caused by the user's input or environment, reported without a traceback."""


class ConfigError(EvalsuiteError):
    """A configuration value is invalid (beyond what the structured schema can check)."""


class MissingAssetError(EvalsuiteError):
    """A weight file that a metric or model needs is not on this machine."""


class LoadError(EvalsuiteError):
    """Weights that do not fit their model: missing, unexpected or wrongly shaped tensors
    (loading them would leave parameters randomly initialised or silently dropped)."""

"""Typed errors. Each names the thing that is wrong, so a user can fix it without a debugger."""


class PolicystackError(Exception):
    """Base class for every error policystack raises on purpose."""


class SpecMismatchError(PolicystackError, ValueError):
    """Provided observation/action features do not match what a consumer needs."""


class UnknownNameError(PolicystackError, KeyError):
    """An unknown task, policy, env or sensor name."""

    def __str__(self) -> str:  # KeyError quotes its message; we want it readable
        return str(self.args[0]) if self.args else ""


class CheckpointError(PolicystackError, OSError):
    """A checkpoint is missing, incomplete or corrupt."""


class DatasetError(PolicystackError, ValueError):
    """A dataset file is missing keys, has wrong shapes, or is not an episode file."""


class ConfigError(PolicystackError, ValueError):
    """A configuration value is invalid or an override does not name a field."""

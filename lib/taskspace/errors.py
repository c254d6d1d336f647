"""Exceptions raised for bad input; each message names the culprit (config key, task, file)."""


class TaskspaceError(Exception):
    """Base class of the errors taskspace raises on purpose."""


class ConfigError(TaskspaceError, ValueError):
    """A configuration value is invalid; the message names the key."""


class TaskDataError(TaskspaceError, ValueError):
    """A task's data is unusable (empty, single class, corrupt); the message names the task or file."""


class ArtifactError(TaskspaceError):
    """An artifact cannot be read or trusted (corrupt, foreign, a refused checkpoint); the message names the file."""


class ArtifactWriteError(TaskspaceError, OSError):
    """An artifact could not be written (full disk, quota, I/O error); the message names it."""

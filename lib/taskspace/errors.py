"""Exceptions raised for bad input; each message names the culprit (config key, task, file)."""


class TaskspaceError(Exception):
    """Base class of the errors taskspace raises on purpose."""


class ConfigError(TaskspaceError, ValueError):
    """A configuration value is invalid; the message names the key."""


class TaskDataError(TaskspaceError, ValueError):
    """A task's data is unusable (empty, single class, corrupt); the message names the task or file."""

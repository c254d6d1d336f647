"""The path keys of a file-backed source's section: required, and an existing folder or file (the schema types them
only). Every error names the key (``data.cub200.root: ...``). Relative paths are taken relative to the working
directory (the workflow's ``--directory``) unless a base folder is given."""

from __future__ import annotations

from pathlib import Path

from ..errors import ConfigError


def _given(value: str | None, key: str, what: str) -> Path:
    """The path a required key holds; null or an empty string is a ConfigError naming the key."""
    if value is None:
        raise ConfigError(f"{key}: required: the path of {what}")
    if not value.strip():
        raise ConfigError(f"{key}: must be a non-empty string, got {value!r}")
    return Path(value)


def directory(value: str | None, key: str, what: str) -> Path:
    """An existing directory; ``what`` says what it should hold."""
    path = _given(value, key, what)
    if not path.exists():
        raise ConfigError(f"{key}: {path} does not exist (expected {what})")
    if not path.is_dir():
        raise ConfigError(f"{key}: {path} is not a directory (expected {what})")
    return path


def file(value: str | None, key: str, what: str, base: Path | None = None) -> Path:
    """An existing file; a relative path is looked up under ``base`` when given, else the working directory."""
    path = _given(value, key, what)
    if base is not None and not path.is_absolute():
        path = base / path
    if not path.is_file():
        raise ConfigError(f"{key}: {path} is not a file (expected {what})")
    return path

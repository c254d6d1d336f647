"""Checks of a file-backed source's config section; every error names the key (``data.cub200.root: ...``).

The workflow validates ``data.<source>`` against the schema first; these checks repeat what matters so that the
package used on its own, and the entries of ``data.combined`` (which the schema cannot type), fail just as clearly.
Relative paths are taken relative to the working directory (the workflow's ``--directory``).
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

from ..errors import ConfigError


def section(value: Any, defaults: dict, key: str) -> dict:
    """The section with its defaults filled in; an unknown key is a ConfigError naming it."""
    if value is None:
        value = {}
    if not isinstance(value, dict):
        raise ConfigError(f"{key}: must be a mapping, got {value!r}")
    for name in value:
        if name not in defaults:
            close = difflib.get_close_matches(str(name), list(defaults), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"{key}.{name}: unknown key{hint}; known keys here: {', '.join(defaults)}")
    return {**defaults, **value}


def integer(value: Any, key: str, minimum: int, allow_none: bool = False) -> int | None:
    """An integer >= minimum (or None where allowed)."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        what = f"an integer >= {minimum}" + (" or null" if allow_none else "")
        raise ConfigError(f"{key}: must be {what}, got {value!r}")
    return int(value)


def fraction(value: Any, key: str) -> float:
    """A number strictly between 0 and 1."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 < value < 1.0:
        raise ConfigError(f"{key}: must be a number in (0, 1), got {value!r}")
    return float(value)


def text(value: Any, key: str, allow_none: bool = False) -> str | None:
    """A non-empty string (or None where allowed)."""
    if value is None and allow_none:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{key}: must be a non-empty string, got {value!r}")
    return value


def directory(value: Any, key: str, what: str) -> Path:
    """An existing directory; ``what`` says what it should hold."""
    if value is None:
        raise ConfigError(f"{key}: required: the path of {what}")
    path = Path(text(value, key))
    if not path.exists():
        raise ConfigError(f"{key}: {path} does not exist (expected {what})")
    if not path.is_dir():
        raise ConfigError(f"{key}: {path} is not a directory (expected {what})")
    return path


def file(value: Any, key: str, what: str, base: Path | None = None) -> Path:
    """An existing file; a relative path is looked up under ``base`` when given, else the working directory."""
    if value is None:
        raise ConfigError(f"{key}: required: the path of {what}")
    path = Path(text(value, key))
    if base is not None and not path.is_absolute():
        path = base / path
    if not path.is_file():
        raise ConfigError(f"{key}: {path} is not a file (expected {what})")
    return path


def mapping(value: Any, key: str) -> dict[str, str]:
    """A mapping of non-empty strings to non-empty strings (``refine``)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{key}: must be a mapping {{group value: finer level}}, got {value!r}")
    for k, v in value.items():
        if not isinstance(k, str) or not k:
            raise ConfigError(f"{key}: keys must be non-empty strings, got {k!r}")
        text(v, f"{key}.{k}")
    return dict(value)

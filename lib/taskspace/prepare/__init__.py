"""Prepared datasets: real images shipped inside installed packages, laid out for the ``imagefolder`` source.

``taskspace prepare <name> DIR`` writes ``DIR/images/<class>/<image files>``, ``DIR/taxonomy.csv`` (``class`` and
one column per level), optionally ``DIR/split.csv`` (``path,split``) and ``DIR/prepared.json`` (what made it), so a
study on real images runs offline. Output is a pure function of the package files and the options: the same inputs
give byte-identical files.

A preparer is a class in this package carrying ``@register_preparer("name")``, with its options (``OPTIONS``), how
it finds its packages (``locate``) and how it writes the layout (``build``). Adding one is one module here, named
after it so it is found without being imported up front. Keep heavy imports (PIL) inside ``build``.
"""

from __future__ import annotations

import importlib
import pkgutil
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ..errors import TaskspaceError

IMAGES, TAXONOMY, SPLIT, RECORD = "images", "taxonomy.csv", "split.csv", "prepared.json"


class PrepareError(TaskspaceError, ValueError):
    """A dataset cannot be prepared as asked (bad option, existing folder, bad package file); names the culprit."""


class MissingPackageError(PrepareError):
    """A package a preparer reads is not installed; the message names it and the command that installs it."""


class PrepareWarning(UserWarning):
    """Input left out of a prepared dataset (an undecodable file, say); it is counted in prepared.json too."""


def warn(message: str) -> None:
    """Report a skipped input (a PrepareWarning; the command line prints it to stderr)."""
    warnings.warn(message, PrepareWarning, stacklevel=2)


@dataclass(frozen=True)
class Option:
    """One command-line option of a preparer: ``--<flag>``, how a value is read, its default and help."""

    flag: str  # e.g. "test-vendor"; the options dict key is the flag with '_' for '-'
    help: str
    default: Any = None
    type: Callable[[str], Any] = str
    kind: str = "value"  # "value", "switch" (a boolean flag) or "append" (may repeat)

    @property
    def key(self) -> str:
        """The key of this option in an options dict."""
        return self.flag.replace("-", "_")


@dataclass(frozen=True)
class Package:
    """An installed package a preparer reads: name, version (None when unknown), where it is, and a digest of the
    files used when the version alone does not pin them (a folder given by path)."""

    name: str
    version: str | None
    path: str
    digest: str | None = None

    def as_dict(self) -> dict:
        """The JSON form written to prepared.json."""
        out = {"name": self.name, "version": self.version, "path": self.path}
        if self.digest is not None:
            out["digest"] = self.digest
        return out


class Preparer:
    """Base class: subclasses set ``VERSION``, ``OPTIONS``, ``LEVEL`` and implement ``locate`` and ``build``."""

    name = "?"
    VERSION = 1  # bump when the same packages and options would give different files
    OPTIONS: tuple[Option, ...] = ()
    LEVEL = "category"  # the taxonomy level whose values are the tasks (for the config snippet)
    SPLIT = False  # whether build writes split.csv
    SUMMARY = ""  # one line for the command's help

    def options(self, given: dict) -> dict:
        """Every option of this preparer, defaults filled in, checked and in JSON form (``given``: key -> value)."""
        unknown = sorted(k for k, v in given.items() if v is not None and k not in {o.key for o in self.OPTIONS})
        if unknown:
            flags = ", ".join("--" + k.replace("_", "-") for k in unknown)
            own = ", ".join("--" + o.flag for o in self.OPTIONS) or "none"
            verb = "does" if len(unknown) == 1 else "do"
            raise PrepareError(f"{flags} {verb} not apply to {self.name!r} (its options: {own})")
        out = {o.key: o.default if given.get(o.key) is None else given[o.key] for o in self.OPTIONS}
        return self.check(out)

    def check(self, options: dict) -> dict:
        """Validate and normalise filled-in options (paths absolute, lists as lists); a PrepareError names --flag."""
        return options

    def locate(self, options: dict) -> list[Package]:
        """The installed packages this dataset is made from; a MissingPackageError says how to install any missing."""
        raise NotImplementedError

    def build(self, options: dict, packages: list[Package], out: Path) -> dict:
        """Write images/, taxonomy.csv and (if SPLIT) split.csv into the empty folder ``out``; returns the counts."""
        raise NotImplementedError

    def data_config(self, dest: str) -> dict:
        """The ``data`` config section that reads the prepared folder ``dest``."""
        section = {"root": f"{dest}/{IMAGES}", "taxonomy": f"{dest}/{TAXONOMY}"}
        if self.SPLIT:
            section["split"] = f"{dest}/{SPLIT}"
        section["level"] = self.LEVEL
        return {"source": "imagefolder", "imagefolder": section}


CATEGORIES = Option("categories", "comma-separated categories to keep, by name or task name (e.g. animals-nature); "
                    "default all", None)


def parse_categories(value) -> list[str] | None:
    """The --categories option as a sorted list (None: all)."""
    if value is None:
        return None
    items = value.split(",") if isinstance(value, str) else list(value)
    out = sorted({str(v).strip() for v in items if str(v).strip()})
    if not out:
        raise PrepareError("--categories: give at least one category")
    return out


def select_categories(available: list[str], wanted: list[str] | None, source: str) -> set[str]:
    """The categories of ``available`` that ``wanted`` names (by name or by task-name slug); all without a list.
    A name that matches none is a PrepareError listing the known ones."""
    from ..data.grouping import slugify

    if wanted is None:
        return set(available)
    by_key = {**{slugify(c): c for c in available}, **{c: c for c in available}}
    unknown = [w for w in wanted if w not in by_key and slugify(w) not in by_key]
    if unknown:
        raise PrepareError(f"--categories: {', '.join(map(repr, unknown))} not in {source}; known: "
                           + ", ".join(sorted(slugify(c) for c in available)))
    return {by_key.get(w, by_key.get(slugify(w))) for w in wanted}


PREPARERS: dict[str, type] = {}


def register_preparer(name: str) -> Callable[[type], type]:
    """Class decorator adding a preparer to the registry under ``name``."""

    def wrap(cls: type) -> type:
        cls.name = name
        PREPARERS[name] = cls
        return cls

    return wrap


def known_preparers() -> list[str]:
    """Names of every preparer this package provides (imports each preparer module once)."""
    for module in pkgutil.iter_modules(__path__):
        if not module.name.startswith("_"):
            importlib.import_module(f"{__name__}.{module.name}")
    return sorted(PREPARERS)


def get_preparer(name: str) -> Preparer:
    """An instance of the registered preparer ``name``; an unknown name is a PrepareError listing the known ones."""
    if name not in PREPARERS:
        known_preparers()
    if name not in PREPARERS:
        raise PrepareError(f"unknown dataset {name!r}; known: {', '.join(known_preparers())}")
    return PREPARERS[name]()

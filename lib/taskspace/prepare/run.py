"""Preparing a dataset into a folder atomically, with its provenance (``prepared.json``).

The folder is built as a hidden temporary sibling of DIR and renamed into place only when complete, so a failure
(or an interrupt) leaves neither DIR nor the temporary folder. An existing DIR made by the same preparer version from
the same options and package versions is left alone; any other existing DIR is an error unless ``force`` replaces
it (the new folder is complete before the old one is moved away).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path

from .. import __version__
from . import RECORD, Package, Preparer, PrepareError, get_preparer


@dataclass
class Prepared:
    """The outcome of :func:`prepare`: the folder, its record, whether it was built now, and the config to use it."""

    dest: Path
    record: dict
    built: bool
    data_config: dict


def identity(record: dict) -> dict:
    """What decides whether a prepared folder is current: name, preparer version, options, package versions (and
    the digests of package folders given by path)."""
    return {
        "name": record.get("name"),
        "preparer_version": record.get("preparer_version"),
        "options": record.get("options"),
        "packages": [(p.get("name"), p.get("version"), p.get("digest")) for p in record.get("packages", [])],
    }


def make_record(preparer: Preparer, options: dict, packages: list[Package], counts: dict) -> dict:
    """The prepared.json content: JSON types only, no time and not the folder's own path, so it is reproducible."""
    return {
        "name": preparer.name,
        "preparer_version": preparer.VERSION,
        "taskspace_version": __version__,
        "options": options,
        "packages": [p.as_dict() for p in packages],
        "split_file": preparer.SPLIT,
        "level": preparer.LEVEL,
        "counts": counts,
    }


def write_prepared(preparer: Preparer, options: dict, packages: list[Package], out: Path) -> dict:
    """Build into the empty folder ``out`` and write its prepared.json; returns the record."""
    counts = preparer.build(options, packages, out)
    record = make_record(preparer, options, packages, counts)
    (out / RECORD).write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return record


def read_record(dest: Path) -> dict | None:
    """DIR/prepared.json as a dict (None when absent or unreadable)."""
    try:
        record = json.loads((dest / RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def _sibling(dest: Path, tag: str) -> Path:
    return dest.with_name(f".{dest.name}.{tag}-{os.getpid()}-{secrets.token_hex(4)}")


def replace_dir(new: Path, dest: Path) -> None:
    """Rename ``new`` to ``dest``; an existing ``dest`` is moved aside first and removed after (restored on error)."""
    if not (dest.exists() or dest.is_symlink()):
        os.rename(new, dest)
        return
    old = _sibling(dest, "old")
    os.rename(dest, old)
    try:
        os.rename(new, dest)
    except BaseException:
        os.rename(old, dest)
        raise
    if old.is_dir() and not old.is_symlink():
        shutil.rmtree(old)
    else:
        old.unlink()


def build_atomically(preparer: Preparer, options: dict, packages: list[Package], dest: Path) -> dict:
    """Build into a temporary sibling of ``dest`` and rename it into place; on any failure remove it and re-raise."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = _sibling(dest, "partial")
    tmp.mkdir()
    try:
        record = write_prepared(preparer, options, packages, tmp)
        replace_dir(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return record


def describe_difference(old: dict, new: dict) -> str:
    """Which identity fields differ between two records, for the existing-folder error."""
    a, b = identity(old), identity(new)
    return ", ".join(k for k in b if a.get(k) != b[k]) or "nothing"


def prepare(name: str, dest: str | os.PathLike, given: dict | None = None, force: bool = False) -> Prepared:
    """Prepare dataset ``name`` into ``dest`` (see the module docstring); ``given``: option key -> value or None."""
    preparer = get_preparer(name)
    options = preparer.options(dict(given or {}))
    packages = preparer.locate(options)
    dest = Path(dest)
    wanted = make_record(preparer, options, packages, {})
    if dest.exists() or dest.is_symlink():
        recorded = read_record(dest)
        if not force:
            if recorded is not None and identity(recorded) == identity(wanted):
                return Prepared(dest, recorded, False, preparer.data_config(str(dest)))
            why = (
                f"it was prepared differently ({describe_difference(recorded, wanted)} differ)"
                if recorded is not None else f"it has no readable {RECORD}"
            )
            raise PrepareError(f"{dest} already exists and {why}; use --force to replace it, or choose another folder")
        if not dest.is_dir():
            raise PrepareError(f"{dest} exists and is not a folder; not replacing it")
    record = build_atomically(preparer, options, packages, dest)
    return Prepared(dest, record, True, preparer.data_config(str(dest)))


def _skips(skipped: dict) -> str:
    parts = []
    for reason, value in skipped.items():
        if isinstance(value, dict):
            shown = ", ".join(f"{k} {v}" for k, v in value.items() if v)
            if shown:
                parts.append(f"{reason} ({shown})")
        elif value:
            parts.append(f"{reason} {value}")
    return "; ".join(parts) or "none"


def describe_counts(counts: dict) -> str:
    """One line: classes (per category when known), images (per split when known) and skips by reason."""
    line = f"{counts.get('classes', 0)} classes"
    if counts.get("classes_per_category"):
        line += f" in {len(counts['classes_per_category'])} categories"
    line += f", {counts.get('images', 0)} images"
    if counts.get("images_per_split"):
        line += " (" + ", ".join(f"{k} {v}" for k, v in counts["images_per_split"].items()) + ")"
    if counts.get("decoded_over_pillow_limit"):
        line += f", {counts['decoded_over_pillow_limit']} of them decoded beyond Pillow's pixel limit"
    return f"{line}; skipped: {_skips(counts.get('skipped', {}))}"


def summary(result: Prepared) -> str:
    """What the command prints: what was done, the counts (per part for a combined dataset), the config to use."""
    import yaml

    record, dest = result.record, result.dest
    if result.built:
        head = f"prepared {record['name']} into {dest}"
    else:
        head = f"{dest} is already prepared ({record['name']}, same options and package versions); nothing to do"
    lines = [head]
    counts = record.get("counts", {})
    if "classes" in counts:
        lines.append("  " + describe_counts(counts))
    else:
        lines += [f"  {part}: {describe_counts(c)}" for part, c in counts.items()]
    lines.append("config to read it:")
    lines.append(yaml.safe_dump({"data": result.data_config}, sort_keys=False, width=120).rstrip())
    return "\n".join(lines)

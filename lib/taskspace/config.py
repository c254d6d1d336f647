"""The config model: validation against the workflow's JSON Schema (shipped in the package, the one source of every
key's default, type and description), with defaults filled in and messages naming the key; and :class:`Settings`,
the typed, frozen view of one validated section that each method and data source reads."""

from __future__ import annotations

import copy
import dataclasses
import difflib
import functools
import typing
from pathlib import Path
from typing import Any, ClassVar

import yaml

from .errors import ConfigError

SCHEMA_PATH = Path(__file__).resolve().with_name("config.schema.yaml")


def load_schema(path: str | Path | None = None) -> dict:
    if path is None:
        return copy.deepcopy(_packaged_schema())
    with open(path) as fh:
        return yaml.safe_load(fh)


@functools.lru_cache(maxsize=1)
def _packaged_schema() -> dict:
    with open(SCHEMA_PATH) as fh:
        return yaml.safe_load(fh)


def _with_defaults(validator_class):
    """A validator that fills each missing property with its schema default before checking it."""
    from jsonschema import validators

    check_properties = validator_class.VALIDATORS["properties"]

    def properties(validator, props, instance, schema):
        if isinstance(instance, dict):
            for key, sub in props.items():
                if "default" in sub and key not in instance:
                    instance[key] = copy.deepcopy(sub["default"])
        yield from check_properties(validator, props, instance, schema)

    return validators.extend(validator_class, {"properties": properties})


def _message(error, schema: dict, root: str = "") -> str:
    """The error's message naming its key; ``root`` is the dotted key of the section validated (empty: the config)."""
    inner = [str(p) for p in error.absolute_path]
    where = ".".join([root] * bool(root) + inner) or "<top level>"
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        known = list(error.schema.get("properties", {}))
        extra = [k for k in error.instance if k not in known]
        hints = []
        for key in extra:
            close = difflib.get_close_matches(str(key), known, n=1)
            hints.append(f"{key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        prefix = "" if where == "<top level>" else f"{where}."
        return (f"config key {prefix}{extra[0] if extra else '?'}: unknown key {', '.join(hints)}; "
                f"known keys here: {', '.join(known)}")
    return f"config key {where}: {error.message}"


def validate_schema(config: dict, schema: dict | None = None) -> dict:
    """Validate ``config`` against the schema in place (defaults filled in) and return it; a ConfigError names the
    offending key. The checks across sections are :func:`taskspace.plan.validate_config`'s."""
    from jsonschema import Draft202012Validator

    schema = schema or load_schema()
    validator = _with_defaults(Draft202012Validator)(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: (len(e.absolute_path), list(map(str, e.path))))
    if errors:
        raise ConfigError(_message(errors[0], schema))
    return config


def canonical(value):
    """``value`` with every mapping's keys sorted, recursively.

    Snakemake compares a rule's params with those of the last run as written, key order included, so params are
    passed in this form: reordering keys in a config file, or the order defaults are filled in, reruns nothing.
    """
    if isinstance(value, dict):
        return {k: canonical(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [canonical(v) for v in value]
    return value


def schema_section(path: str, schema: dict | None = None) -> dict:
    """The schema of the config section at the dotted ``path`` (``embeddings.task2vec``), ``$ref`` resolved."""
    schema = schema or _packaged_schema()
    node = schema
    for part in path.split("."):
        node = _resolved(node, schema)
        try:
            node = node["properties"][part]
        except KeyError:
            raise KeyError(f"the config schema has no section {path!r}") from None
    return _resolved(node, schema)


def _resolved(node: dict, schema: dict) -> dict:
    ref = node.get("$ref")
    if not ref:
        return node
    target = schema
    for part in ref.removeprefix("#/").split("/"):
        target = target[part]
    return {**target, **{k: v for k, v in node.items() if k != "$ref"}}


def validate_section(path: str, value: Any, key: str | None = None, schema: dict | None = None,
                     check: bool = True) -> dict:
    """A validated copy of one config section (``path`` in the schema) with its defaults filled in; a ConfigError
    names the key under ``key`` (default ``path``), e.g. ``data.combined.cub.min_classes`` for a combined entry.
    ``check=False`` only fills in the defaults."""
    from jsonschema import Draft202012Validator

    schema = schema or _packaged_schema()
    key = key or path
    value = {} if value is None else copy.deepcopy(value)
    sub = schema_section(path, schema)
    validator = _with_defaults(Draft202012Validator)({**schema, **sub})
    errors = sorted(validator.iter_errors(value), key=lambda e: (len(e.absolute_path), list(map(str, e.path))))
    if errors and check:
        raise ConfigError(_message(errors[0], schema, key))
    return value


@dataclasses.dataclass(frozen=True)
class Settings:
    """Base of the typed settings: a frozen dataclass whose fields are exactly the keys of the schema section
    ``SECTION`` (no defaults of its own: those come from the schema), built once from the validated section.

    Fields annotated ``tuple[...]`` receive the section's lists as tuples, ``int`` and ``float`` fields their type
    (JSON Schema counts 2.0 as an integer and 1 as a number); a field annotated with another Settings class receives
    that nested section's settings.
    """

    SECTION: ClassVar[str] = ""

    @classmethod
    def from_config(cls, value: dict | None = None, key: str | None = None, check: bool = True):
        """The settings of ``value`` (a section as written, or already validated), validated against the schema;
        a ConfigError names the key under ``key`` (default the section's path). ``check=False`` takes the values
        as given, the schema's defaults filled in (library calls, such as a quick bootstrap of 10 resamples)."""
        if isinstance(value, cls):
            return value
        key = key or cls.SECTION
        section = validate_section(cls.SECTION, value, key, check=check)
        hints = typing.get_type_hints(cls)
        values = {}
        for f in dataclasses.fields(cls):
            v, hint = section.get(f.name), hints[f.name]
            if isinstance(hint, type) and issubclass(hint, Settings):
                v = hint.from_config(v, f"{key}.{f.name}", check)
            elif isinstance(v, list) and typing.get_origin(hint) is tuple:
                v = tuple(v)
            elif isinstance(v, float) and v.is_integer() and int in (hint, *typing.get_args(hint)):
                v = int(v)  # JSON Schema counts 2.0 as an integer
            elif isinstance(v, int) and not isinstance(v, bool) and float in (hint, *typing.get_args(hint)):
                v = float(v)  # and 1 as a number
            values[f.name] = v
        return cls(**values)

    def as_dict(self) -> dict:
        """The section as a plain mapping (tuples back to lists), as the config holds it."""
        out = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            out[f.name] = v.as_dict() if isinstance(v, Settings) else list(v) if isinstance(v, tuple) else v
        return out

"""Config validation against the workflow's JSON Schema, with defaults filled in and messages naming the key."""

from __future__ import annotations

import copy
import difflib
from pathlib import Path

import yaml

from .errors import ConfigError

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "rules" / "config.schema.yaml"


def load_schema(path: str | Path | None = None) -> dict:
    with open(path or SCHEMA_PATH) as fh:
        return yaml.safe_load(fh)


def _dotted(path) -> str:
    return ".".join(str(p) for p in path) or "<top level>"


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


def _message(error, schema: dict) -> str:
    where = _dotted(error.absolute_path)
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


def validate_config(config: dict, schema: dict | None = None) -> dict:
    """Validate ``config`` in place (defaults filled in) and return it; a ConfigError names the offending key.

    Beyond the schema: the probe section's cross-key checks, and ``data.resolution: auto`` replaced by the
    resolution of the probe's weights (see :func:`taskspace.probes.check_probe_config`).
    """
    from jsonschema import Draft202012Validator

    from .probes import check_probe_config

    schema = schema or load_schema()
    validator = _with_defaults(Draft202012Validator)(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: (len(e.absolute_path), list(map(str, e.path))))
    if errors:
        raise ConfigError(_message(errors[0], schema))
    if isinstance(config.get("probe"), dict) and isinstance(config.get("data"), dict):
        check_probe_config(config)
    return config


def method_configs(config: dict, schema: dict | None = None) -> dict[str, tuple[str, dict]]:
    """{name: (registered method, its config)} for every entry of ``embeddings.methods`` (config validated).

    A name is either a registered method (its own section) or a key of ``embeddings.variants``, whose keys
    override the named method's section and are checked against that section's schema.
    """
    from jsonschema import Draft202012Validator

    from .embeddings import known_methods

    schema = schema or load_schema()
    sections = schema["properties"]["embeddings"]["properties"]
    emb = config["embeddings"]
    variants = emb.get("variants", {})
    known = known_methods()
    out: dict[str, tuple[str, dict]] = {}
    for name in sorted(set(variants) & set(known)):
        raise ConfigError(f"config key embeddings.variants.{name}: a variant cannot reuse a method's name")
    for name in emb["methods"]:
        if name in variants:
            base = variants[name]["method"]
            where = f"embeddings.variants.{name}"
            if base not in known:
                raise ConfigError(f"config key {where}.method: unknown embedding method {base!r}; known: {known}")
            merged = copy.deepcopy(emb.get(base, {}))
            merged.update({k: copy.deepcopy(v) for k, v in variants[name].items() if k != "method"})
            sub = sections.get(base, {"type": "object"})
            validator = _with_defaults(Draft202012Validator)({**schema, **sub})
            errors = sorted(validator.iter_errors(merged), key=lambda e: len(e.absolute_path))
            if errors:
                raise ConfigError(_message(errors[0], schema).replace("config key ", f"config key {where}.", 1)
                                  .replace(f"{where}.<top level>", where))
            out[name] = (base, merged)
        elif name in known:
            out[name] = (name, emb.get(name, {}))
        else:
            close = difflib.get_close_matches(name, known + list(variants), n=1)
            raise ConfigError(
                f"config key embeddings.methods: unknown embedding method {name!r}"
                + (f" (did you mean {close[0]!r}?)" if close else "")
                + f"; known: {known}, variants: {sorted(variants)}"
            )
    for name, (base, cfg) in out.items():
        if base == "model2vec":
            if cfg["base"] not in out or out[cfg["base"]][0] not in ("task2vec", "task2vec_mc"):
                raise ConfigError(
                    f"config key embeddings.{name}.base: {cfg['base']!r} must be a Task2Vec method listed in "
                    f"embeddings.methods"
                )
    return out


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

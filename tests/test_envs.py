"""The conda environments of the rules agree with the Python package's pinned dependencies.

They cannot be solved on a machine without conda channels; what can be checked is that they parse, that every
rule's `conda:` file exists, and that every dependency carries the same version constraint as pyproject.toml.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
ENVS = sorted((REPO / "envs").glob("*.yaml"))
# conda-forge package names that differ from the PyPI names in pyproject.toml
CONDA_NAMES = {"torch": "pytorch"}
SPEC = re.compile(r"^\s*([A-Za-z0-9_.\-]+)\s*(.*?)\s*$")


def _split(requirement: str) -> tuple[str, str]:
    name, spec = SPEC.match(requirement).groups()
    return name.lower().replace("_", "-"), spec.replace(" ", "")


def _pyproject() -> dict[str, str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    return dict(_split(r) for r in project["dependencies"])


def _env_dependencies(env: dict) -> dict[str, str]:
    """{name: version spec} of an env file's conda and pip dependencies (conda '=' pins read as '==')."""
    out = {}
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            for req in dep.get("pip", []):
                name, spec = _split(req)
                out[name] = spec
        else:
            name, spec = _split(dep)
            if spec.startswith("=") and not spec.startswith("=="):
                spec = "=" + spec
            out[name] = spec
    return out


def test_every_rule_env_file_exists_and_parses():
    referenced = set()
    for smk in (REPO / "rules").glob("*.smk"):
        referenced |= set(re.findall(r'conda:\s*\n\s*"([^"]+)"', smk.read_text()))
    assert referenced, "no rule declares a conda environment"
    for path in referenced:
        env_file = (REPO / "rules" / path).resolve()
        assert env_file.exists(), f"{path} (referenced by a rule) does not exist"
        env = yaml.safe_load(env_file.read_text())
        assert env["channels"] and env["dependencies"], f"{path}: empty channels or dependencies"


@pytest.mark.parametrize("env_file", ENVS, ids=[p.name for p in ENVS])
def test_env_pins_agree_with_pyproject(env_file):
    env = _env_dependencies(yaml.safe_load(env_file.read_text()))
    wanted = _pyproject()
    python = env.pop("python")
    assert python == "==3.11", f"{env_file.name}: python {python}; the package is tested on 3.11"
    env.pop("pip", None)
    for name, spec in wanted.items():
        if name == "snakemake":
            continue  # runs the workflow; not needed inside a rule's environment
        key = name if name in env else CONDA_NAMES.get(name, name)
        assert key in env, f"{env_file.name} lacks {name} (pyproject.toml: {name}{spec})"
        assert env[key] == spec, f"{env_file.name}: {key}{env[key]} but pyproject.toml has {name}{spec}"
    extra = sorted(set(env) - set(wanted) - {CONDA_NAMES.get(n, n) for n in wanted})
    assert not extra, f"{env_file.name} pins packages pyproject.toml does not: {extra}"


def _rules() -> dict[str, str]:
    """{rule name: its text} of every rule in rules/*.smk."""
    out = {}
    for smk in sorted((REPO / "rules").glob("*.smk")):
        for block in re.split(r"\n(?=rule )", "\n" + smk.read_text()):
            m = re.match(r"rule (\w+):", block.strip())
            if m:
                out[m.group(1)] = block
    return out


def test_every_rule_is_a_script_job_in_the_conda_env():
    """Every job runs as its own script process in the rules' conda env (so `--sdm conda` covers all compute and no
    job relies on sharing the Snakemake process); the workflow profile does not run jobs as threads."""
    rules = _rules()
    assert {"split_task", "train_probe", "import_probe", "init_random_probe", "train_expert", "transfer_batch",
            "embed_batch", "learn_model2vec", "compute_distances", "score_selection"} <= set(rules)
    for name, text in rules.items():
        assert "\n    run:" not in text, f"rule {name} runs inside the Snakemake process"
        assert "\n    script:" in text, f"rule {name} is not a script job"
        assert re.search(r'\n    conda:\s*\n\s*"\.\./envs/taskspace\.yaml"', text), f"rule {name} has no conda env"
    profile = yaml.safe_load((REPO / "profiles" / "default" / "config.yaml").read_text())
    assert "force-use-threads" not in profile

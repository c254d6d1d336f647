"""Every study runs as written: the documented command reads exactly its config file over the schema's defaults.

A copy of the repository's working tree (the demo's config.yaml included) runs each documented study command as
written, as a dry run; the workflow names the files it read and the digest of the effective config, which must be
the file over the schema's defaults, and the jobs it plans must be those the docs state.
"""

from __future__ import annotations

import contextlib
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from taskspace.cli import main
from taskspace.plan import config_digest, effective_config, load_config_files

from conftest import REPO, job_counts, write_config
from datasets import fit_sample_minimums, write_cub_inat, write_stanford_cars
from packages import ensure_apt, ensure_npm, ensure_pip_no_deps, npm_modules

DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md")), *sorted((REPO / "configs").glob("*.yaml"))]
COMMAND = re.compile(r"^(?:#\s*)?(snakemake [^#\n]*?--configfile configs/[\w.-]+\.yaml[^#\n]*?)\s*(?:#.*)?$", re.M)
TREE = ["Snakefile", "rules", "lib", "workflow_scripts", "envs", "report", "slurm", "profiles"]

# The jobs each study's documented command plans, as the docs state them (docs/studies.md, docs/slurm.md and the
# configs' headers); the CUB+iNat and Cars studies run on tiny fixtures of their datasets, whose sizes differ from
# the real ones but whose task lists do not.
PLANNED = {
    "packaged.yaml": {"split_task": 21, "train_expert": 21, "import_probe": 1},
    "collections.yaml": {"split_task": 56, "train_expert": 21, "transfer_batch": 6, "embed_batch": 14,
                         "import_named_probe": 1},
    "cub_inat.yaml": {"split_task": 50, "train_expert": 50, "transfer_batch": 13, "embed_batch": 13},
    "cub_bp_inat.yaml": {"split_task": 50, "train_expert": 50, "transfer_batch": 13, "embed_batch": 13},
    "cars.yaml": {"split_task": 3, "train_expert": 3, "transfer_batch": 1},
    "world_replicates.yaml": {"split_task": 25, "train_expert": 45, "transfer_batch": 12},
    "world96.yaml": {"split_task": 97, "train_expert": 50, "transfer_batch": 13},
    "paper_scale.yaml": {"split_task": 1460 + 1, "train_expert": 156},  # the tasks and the probe's source task
}


def documented_commands() -> dict[str, list[str]]:
    """{config file name: the snakemake commands the docs and config headers show for it}."""
    found: dict[str, list[str]] = {}
    for path in DOCS:
        for command in COMMAND.findall(path.read_text()):
            name = re.search(r"--configfile configs/([\w.-]+\.yaml)", command).group(1)
            found.setdefault(name, []).append(command.strip())
    return found


def _clone(tmp_path: Path) -> Path:
    """The repository's working tree as a user has it: the demo's config.yaml, configs/, the workflow."""
    tree = tmp_path / "taskspace"
    (tree / "configs").mkdir(parents=True)
    for name in TREE:
        (tree / name).symlink_to(REPO / name)
    (tree / "config.yaml").write_text((REPO / "config.yaml").read_text())
    return tree


def _with_fixture_data(tree: Path, name: str, tmp_path: Path) -> None:
    """configs/<name> in the tree: the shipped file, its data roots pointed at a fixture where the study's data is
    not installable here and the embeddings' sample minimums lowered to the fixture's few images (the only
    changes)."""
    cfg = yaml.safe_load((REPO / "configs" / name).read_text())
    if name.startswith("cub"):
        fixture = write_cub_inat(tmp_path / "data", cub_attributes=name.startswith("cub_bp"))["config"]["combined"]
        for entry in ("cub", "inat"):
            for key in ("root", "taxonomy"):
                if key in cfg["data"]["combined"][entry]:
                    cfg["data"]["combined"][entry][key] = str(fixture[entry][key])
        text = yaml.safe_dump(fit_sample_minimums(cfg), sort_keys=False)
    elif name == "cars.yaml":
        cfg["data"]["stanford_cars"]["root"] = str(write_stanford_cars(tmp_path / "data")["root"])
        text = yaml.safe_dump(fit_sample_minimums(cfg), sort_keys=False)
    else:
        text = (REPO / "configs" / name).read_text()
    (tree / "configs" / name).write_text(text)


_PREPARED: dict[str, Path] = {}


def _prepared(part: str, dest: Path, tmp_path_factory) -> None:
    """``taskspace prepare <part>`` at its default options, as `prepare packaged` and `prepare collections` run it,
    made once per session and linked at ``dest`` (the emoji from the 32 px sheets of the main npm package instead
    of the four vendors' packages: the same emoji, classes and tasks)."""
    if part not in _PREPARED:
        folder = tmp_path_factory.mktemp("prepared") / part
        extra = {"emoji": ["--size", "32", "--packages", str(npm_modules("emoji-datasource"))],
                 "openmoji": ["--packages", str(npm_modules("openmoji"))]}.get(part, [])
        assert main(["prepare", part, str(folder), *extra]) == 0
        _PREPARED[part] = folder
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.symlink_to(_PREPARED[part], target_is_directory=True)


def _dry_run(tree: Path, command: str) -> subprocess.CompletedProcess:
    words = shlex.split(command)
    assert words[0] == "snakemake"
    proc = subprocess.run([sys.executable, "-m", *words, "-n"], cwd=tree, capture_output=True, text=True,
                          timeout=1800)
    assert proc.returncode == 0, f"{command}:\n{proc.stdout}\n{proc.stderr}"
    return proc


def _read_config_line(stderr: str) -> tuple[str, str]:
    match = re.search(r"^taskspace: config (.+) over the schema's defaults \(digest (\w+)\)$", stderr, re.M)
    assert match, stderr
    return match.group(1), match.group(2)


def test_every_shipped_config_has_a_documented_command_and_every_command_a_config():
    commands = documented_commands()
    shipped = {p.name for p in (REPO / "configs").glob("*.yaml")}
    assert set(commands) == shipped == set(PLANNED)


@pytest.mark.workflow
@pytest.mark.parametrize("name", sorted(PLANNED))
def test_the_documented_command_reads_its_file_alone_and_plans_what_the_docs_state(name, tmp_path, tmp_path_factory):
    tree = _clone(tmp_path)
    if name == "packaged.yaml":
        for reason in (ensure_npm("emoji-datasource"), ensure_apt("openclipart-png"),
                       ensure_apt("dataset-fashion-mnist")):
            assert reason is None, reason
        # what `taskspace prepare packaged data/packaged` writes, with the emoji drawn from the 32 px sheets of
        # the main npm package instead of the four vendors' packages (the same emoji, classes and tasks)
        for part in ("emoji", "clipart", "fashion_mnist"):
            _prepared(part, tree / "data" / "packaged" / part, tmp_path_factory)
    if name == "collections.yaml":
        for reason in (ensure_npm("emoji-datasource"), ensure_npm("openmoji"), ensure_apt("openclipart-png"),
                       ensure_apt("dataset-fashion-mnist"), ensure_apt("wesnoth-1.16-data"),
                       ensure_apt("tuxpaint-stamps-default"), ensure_pip_no_deps("animal-mnist")):
            assert reason is None, reason
        # what `taskspace prepare collections data/collections` writes, the emoji as above
        for part in ("emoji", "clipart", "fashion_mnist", "wesnoth", "animal_mnist", "openmoji", "tuxpaint"):
            _prepared(part, tree / "data" / "collections" / part, tmp_path_factory)
    _with_fixture_data(tree, name, tmp_path)
    with contextlib.chdir(tree):
        expected = effective_config(load_config_files([Path("configs") / name]))
    for command in documented_commands()[name]:
        command = command.removesuffix(" -n")
        proc = _dry_run(tree, command)
        files, digest = _read_config_line(proc.stderr)
        assert files.endswith(f"configs/{name}") and "config.yaml," not in files
        assert digest == config_digest(expected), f"{command}: another effective config than configs/{name}'s"
        counts = job_counts(proc.stdout)
        assert {rule: counts.get(rule, 0) for rule in PLANNED[name]} == PLANNED[name], command
    with contextlib.chdir(tree):  # check-config builds and prints the same effective config
        assert main(["check-config", f"configs/{name}"]) == 0


def test_the_demo_is_read_only_without_a_configfile(tmp_path, capsys):
    tree = _clone(tmp_path)
    assert main(["check-config", "--run", str(tree), "--print"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed == effective_config(load_config_files([tree / "config.yaml"]))
    assert printed["experts"]["min_train_images"] == 80  # the demo's own value, not the schema's
    own = tmp_path / "own.yaml"
    own.write_text("data: {synthetic: {orders_per_clade: 2}}\n")
    assert main(["check-config", str(own), "--print"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["experts"]["min_train_images"] == 0  # the schema's default: nothing of the demo's file
    assert printed["data"]["synthetic"]["orders_per_clade"] == 2


def test_a_config_valid_alone_but_not_as_a_run_stops_check_config_naming_the_key(tmp_path, capsys):
    write_config(tmp_path, experts={"min_train_images": 10**6})
    assert main(["check-config", str(tmp_path / "config.yaml")]) == 2
    assert "experts.min_train_images" in capsys.readouterr().err


def test_a_task_below_an_embeddings_sample_minimum_stops_the_plan_naming_the_key_and_the_tasks(tmp_path, capsys):
    # the tiny config's tasks have 10 (geometric-c1-o1), 15 (organic-c1-o2) and 21 (organic-c1-o1) training images
    cfg = yaml.safe_load((REPO / "tests" / "configs" / "tiny.yaml").read_text())
    embeddings = cfg["embeddings"]
    embeddings["methods"] = ["domain", "task2vec_random"]
    embeddings["variants"] = {"task2vec_random": {"method": "task2vec", "probe": "random"}}
    embeddings["task2vec"]["min_samples"] = 16
    write_config(tmp_path, embeddings=embeddings)
    assert main(["check-config", str(tmp_path / "config.yaml")]) == 2
    err = capsys.readouterr().err
    # the variant reads its method's section, so that key is named, with every task below it
    assert ("config key embeddings.task2vec.min_samples: 16, but 2 task(s) have fewer training images: "
            "geometric-c1-o1 (10), organic-c1-o2 (15)") in err
    embeddings["variants"]["task2vec_random"]["min_samples"] = 10  # the variant's own key, and it is met
    write_config(tmp_path, embeddings=embeddings)
    assert main(["check-config", str(tmp_path / "config.yaml")]) == 0
    embeddings["variants"]["task2vec_random"]["min_samples"] = 11
    write_config(tmp_path, embeddings=embeddings)
    assert main(["check-config", str(tmp_path / "config.yaml")]) == 2
    assert "embeddings.variants.task2vec_random.min_samples: 11, but 1 task(s)" in capsys.readouterr().err


@pytest.mark.workflow
def test_the_demo_runs_without_a_configfile_and_a_users_file_replaces_it(tmp_path):
    tree = _clone(tmp_path)
    demo = subprocess.run([sys.executable, "-m", "snakemake", "--cores", "2", "-n"], cwd=tree, capture_output=True,
                          text=True, timeout=1800)
    assert demo.returncode == 0, demo.stderr
    assert _read_config_line(demo.stderr)[0] == "config.yaml"
    assert job_counts(demo.stdout)["split_task"] == 25  # the demo's 24 tasks and the probe's source task
    (tree / "mine.yaml").write_text("data: {synthetic: {orders_per_clade: 2}}\n")
    mine = subprocess.run([sys.executable, "-m", "snakemake", "--cores", "2", "-n", "--configfile", "mine.yaml"],
                          cwd=tree, capture_output=True, text=True, timeout=1800)
    assert mine.returncode == 0, mine.stderr
    assert _read_config_line(mine.stderr)[0].endswith("mine.yaml")
    counts = job_counts(mine.stdout)
    assert counts["split_task"] == 2 * 3 * 2 + 1  # its world; every task gets an expert (the schema's threshold 0)
    assert counts["train_expert"] == 12

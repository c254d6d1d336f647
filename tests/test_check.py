"""`taskspace check` on the tiny run: a sound run passes; each kind of damage is named with the command that
redoes it, and that command makes the run whole again, with the tables of the untouched run."""

from __future__ import annotations

import json
import os
import shlex
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import snakemake
from taskspace.check import check_run
from taskspace.cli import main
from taskspace.results import read_stamp

pytestmark = pytest.mark.workflow

TABLES = ("tasks.parquet", "transfer.parquet", "selection.parquet", "summary.parquet", "comparisons.parquet")


def copy_run(run: Path, dest: Path) -> Path:
    shutil.copytree(run, dest, symlinks=True, ignore=shutil.ignore_patterns("locks"))
    return dest


def assert_tables_equal(a: Path, b: Path) -> None:
    """The run's tables are equal but for the timing columns."""
    for table in TABLES:
        x, y = (pd.read_parquet(r / "results" / table) for r in (a, b))
        drop = [c for c in x.columns if c.startswith("seconds") or c == "path"]
        pd.testing.assert_frame_equal(x.drop(columns=drop), y.drop(columns=drop, errors="ignore"), obj=table)


def test_a_finished_run_passes_and_every_artifact_carries_its_jobs_stamp(tiny_run, capsys):
    report = check_run(tiny_run)
    assert report.ok and report.n_artifacts >= 30, report.problems
    assert main(["check", "--run", str(tiny_run)]) == 0
    assert "all" in capsys.readouterr().out
    stamp = read_stamp(tiny_run / "results" / "experts" / "organic-c1-o1.pt")
    assert stamp["rule"] == "train_expert" and stamp["wildcards"] == {"task": "organic-c1-o1"}
    assert set(stamp["params"]) == {"experts", "seed", "version"} and stamp["seed"] == 0
    assert read_stamp(tiny_run / "results" / "tasks" / "organic-c1-o1.h5")["rule"] == "split_task"
    assert read_stamp(tiny_run / "results" / "embeddings.h5")["rule"] == "gather_embeddings"
    assert read_stamp(tiny_run / "results" / "summary.parquet")["rule"] == "score_selection"


def test_every_artifact_of_a_run_has_the_umasks_permissions(tiny_run):
    from taskspace.config import canonical
    from taskspace.plan import validate_config
    from taskspace.plan import RunPlan

    mask = os.umask(0)
    os.umask(mask)  # the run's jobs inherited this process's umask
    plan = RunPlan(canonical(validate_config(yaml.safe_load((tiny_run / "config.yaml").read_text()))))
    modes = {a.path: oct((tiny_run / a.path).stat().st_mode & 0o777) for a in plan.artifacts()}
    assert modes == {path: oct(0o666 & ~mask) for path in modes}


def test_damage_is_named_and_the_printed_command_repairs_it(tiny_run, tmp_path, capsys):
    run = copy_run(tiny_run, tmp_path / "run")
    results = run / "results"
    transfer = results / "transfer.parquet"
    transfer.write_bytes(transfer.read_bytes()[: transfer.stat().st_size // 2])  # truncated
    (results / "experts" / "organic-c1-o1.metrics.parquet").unlink()  # missing
    shutil.copy(results / "tasks" / "organic-c1-o1.h5", results / "tasks" / "organic-c1-o2.h5")  # another task's
    (results / "distances" / "domain.parquet").write_bytes(b"not a table")  # corrupt
    leftover = results / "embeddings" / f".part-000.h5.{os.uname().nodename}~999999999~00.tmp"
    leftover.write_bytes(b"half")  # a write killed midway (process long gone)

    assert main(["check", "--run", str(run), "--json"]) == 1
    out = json.loads(capsys.readouterr().out)
    got = {p["path"]: p["status"] for p in out["problems"]}
    assert got == {
        "results/transfer.parquet": "corrupt",
        "results/experts/organic-c1-o1.metrics.parquet": "missing",
        "results/tasks/organic-c1-o2.h5": "foreign",
        "results/distances/domain.parquet": "corrupt",
        str(leftover.relative_to(run)): "leftover",
    }
    assert "organic-c1-o1" in next(p["detail"] for p in out["problems"] if p["status"] == "foreign")
    command = out["command"]
    redo, rm = command.split(" && ")
    assert shlex.split(rm) == ["rm", "-f", str(leftover)]
    words = shlex.split(redo)
    assert words[:3] == ["snakemake", "--cores", "all"] and words[words.index("--forcerun") + 1:] == [
        p["path"] for p in out["problems"] if p["status"] != "leftover"]

    # The printed commands, as a user runs them (the Snakefile of this checkout, this run's directory).
    os.unlink(leftover)
    snakemake(run, *words[1:])
    assert check_run(run).ok
    assert_tables_equal(tiny_run, run)


def test_a_changed_config_section_or_seed_marks_what_it_made_as_stale(tiny_run, tmp_path):
    run = copy_run(tiny_run, tmp_path / "run")
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    cfg["transfer"]["max_iter"] += 5
    cfg["seed"] = cfg.get("seed", 0) + 7
    (run / "config.yaml").write_text(yaml.safe_dump(cfg))
    report = check_run(run)
    stale = {p.path: p.detail for p in report.problems if p.status == "stale"}
    assert {p.status for p in report.problems} == {"stale"}
    assert "made by a different config: transfer differ" in stale["results/transfer.parquet"]
    assert "made with seed 0, the config's is 7" in stale["results/experts/organic-c1-o1.pt"]
    assert "results/tasks/organic-c1-o1.h5" not in stale  # the data section did not change
    # a --configfile instead of the run's config.yaml, as the workflow reads it: the file the run was made with
    other = tmp_path / "other.yaml"
    other.write_text((tiny_run / "config.yaml").read_text())
    assert check_run(run, [str(other)]).ok
    # never merged over config.yaml: a file of two sections means itself over the schema's defaults
    partial = tmp_path / "partial.yaml"
    partial.write_text(yaml.safe_dump({"seed": 0, "transfer": yaml.safe_load((tiny_run / "config.yaml").read_text())
                                       ["transfer"]}))
    assert not check_run(run, [str(partial)]).ok


def test_bad_input_is_named(tmp_path, capsys):
    assert main(["check", "--run", str(tmp_path / "nowhere")]) == 2
    assert "nowhere: no such run folder" in capsys.readouterr().err
    assert main(["check", "--run", str(tmp_path)]) == 2
    assert "no config.yaml" in capsys.readouterr().err
    (tmp_path / "config.yaml").write_text("experts: {epochs: -1}\n")
    assert main(["check", "--run", str(tmp_path)]) == 2
    assert "experts.epochs" in capsys.readouterr().err

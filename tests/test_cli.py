"""The command line on a finished run and on config files."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from taskspace import __version__
from taskspace.cli import main
from taskspace.results import write_table

COMMANDS = ["summary", "recommend", "check", "check-config", "prepare", "install-weights"]
TINY = Path(__file__).resolve().parent / "configs" / "tiny.yaml"


def fake_summary(results: Path) -> Path:
    """A small summary table under ``results``: two selectors, the columns `taskspace summary` prints."""
    path = results / "summary.parquet"
    results.mkdir(parents=True, exist_ok=True)
    write_table(
        pd.DataFrame(
            [{"method": "oracle", "n_targets": 2, "mean_optimal_error": 0.25, "mean_chosen_error": 0.25,
              "mean_relative_increase": 0.0, "median_relative_increase": 0.0, "top1_hit_rate": 1.0,
              "mean_rank_corr": float("nan")},
             {"method": "random", "n_targets": 2, "mean_optimal_error": 0.25, "mean_chosen_error": 0.3,
              "mean_relative_increase": 0.1234, "median_relative_increase": 0.1, "top1_hit_rate": 0.5,
              "mean_rank_corr": float("nan")}]
        ),
        path,
    )
    return path


def test_version(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0 and capsys.readouterr().out.strip() == f"taskspace {__version__}"


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_a_description_and_its_exit_statuses(command, capsys):
    with pytest.raises(SystemExit) as stop:
        main([command, "-h"])
    assert stop.value.code == 0
    paragraphs = capsys.readouterr().out.split("\n\n")
    assert paragraphs[0].startswith("usage:")
    assert not paragraphs[1].startswith(("positional arguments:", "options:")), f"{command}: no description"
    assert re.search(r"Exit status:? 0 .* 2 ", " ".join(" ".join(paragraphs).split())), command


def test_summary_reads_the_run_folder_or_its_results_folder(tmp_path, capsys, monkeypatch):
    fake_summary(tmp_path / "run" / "results")
    want = "| random | 2 | 25.00 | 30.00 | 12.34 | 10.00 | 50.00 | nan |"
    for run in (tmp_path / "run", tmp_path / "run" / "results"):
        assert main(["summary", "--run", str(run), "--markdown"]) == 0
        captured = capsys.readouterr()
        assert want in captured.out and captured.err == ""
    monkeypatch.chdir(tmp_path / "run")  # default: the run in .
    assert main(["summary", "--markdown"]) == 0
    assert want in capsys.readouterr().out


def test_the_positional_run_still_works_with_a_deprecation_note(tmp_path, capsys):
    fake_summary(tmp_path / "results")
    assert main(["summary", str(tmp_path / "results"), "--markdown"]) == 0
    captured = capsys.readouterr()
    assert "| random | 2 |" in captured.out
    assert "`taskspace summary RUN` is deprecated" in captured.err and "taskspace summary --run RUN" in captured.err
    assert main(["check", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err
    assert "`taskspace check RUN` is deprecated" in err and "nowhere: no such run folder" in err
    assert main(["summary", str(tmp_path), "--run", str(tmp_path)]) == 2
    assert "the run is named twice" in capsys.readouterr().err


def test_summary_without_results_says_what_is_missing_and_how_to_make_it(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    assert main(["summary", "--run", str(run)]) == 2
    assert capsys.readouterr().err.strip() == (f"taskspace: {run}/results/summary.parquet does not exist: run "
                                               f"`snakemake --cores 2` in {run} first (with the --configfile the run "
                                               "was started with, if any)")
    (run / "results").mkdir()  # a results folder without its table: the run is its parent
    assert main(["summary", "--run", str(run / "results")]) == 2
    assert f"{run}/results/summary.parquet does not exist: run `snakemake --cores 2` in {run} first" \
        in capsys.readouterr().err
    assert main(["summary", "--run", str(tmp_path / "nowhere")]) == 2
    assert "nowhere: no such run folder" in capsys.readouterr().err
    (run / "results" / "summary.parquet").write_bytes(b"not a table")
    assert main(["summary", "--run", str(run)]) == 2
    assert "summary.parquet: not a readable table" in capsys.readouterr().err
    write_table(pd.DataFrame({"method": ["oracle"]}), run / "results" / "summary.parquet")
    assert main(["summary", "--run", str(run)]) == 2
    assert "summary.parquet: not a summary table (no column n_targets" in capsys.readouterr().err


def test_check_exit_statuses_and_its_run_folder(tmp_path, capsys):
    """0 is the finished run's (tests/test_check.py); here: 1 for a run with nothing made yet, 2 for bad input,
    and the results folder standing for its run."""
    run = tmp_path / "run"
    (run / "results").mkdir(parents=True)
    shutil.copy(TINY, run / "config.yaml")
    for given in (run, run / "results"):
        assert main(["check", "--run", str(given), "--quick"]) == 1
        out = capsys.readouterr().out
        assert "missing    results/summary.parquet" in out and f"--directory {run} " in out
    (run / "config.yaml").unlink()
    assert main(["check", "--run", str(run)]) == 2
    assert "no config.yaml" in capsys.readouterr().err


def test_recommend_on_a_folder_that_is_not_a_run_is_bad_input(tmp_path, capsys):
    new = tmp_path / "new" / "a-class"
    new.mkdir(parents=True)
    assert main(["recommend", str(new.parent), "--run", str(tmp_path), "--quiet"]) == 2
    assert "is this a finished run?" in capsys.readouterr().err


def test_summary_prints_percentages(tmp_path, capsys):
    fake_summary(tmp_path)
    assert main(["summary", "--run", str(tmp_path), "--markdown"]) == 0
    out = capsys.readouterr().out
    assert "| random | 2 | 25.00 | 30.00 | 12.34 | 10.00 | 50.00 | nan |" in out


def test_summary_prints_each_interval_beside_its_figure(tmp_path, capsys):
    write_table(
        pd.DataFrame([{"meta_task": "all", "method": "logme", "kind": "per-expert", "cost": 12.0, "n_targets": 11,
                       "n_skipped": 1, "mean_optimal_error": 0.25, "mean_chosen_error": 0.3,
                       "mean_relative_increase": 0.1234, "mean_relative_increase_lo": 0.05,
                       "mean_relative_increase_hi": 0.2, "median_relative_increase": 0.1, "top1_hit_rate": 0.5,
                       "top1_hit_rate_lo": 0.25, "top1_hit_rate_hi": 0.75, "mean_rank_corr": 0.3}]),
        tmp_path / "summary.parquet",
    )
    assert main(["summary", "--run", str(tmp_path), "--markdown"]) == 0
    out = capsys.readouterr().out
    assert "| all | logme | per-expert | 12 | 11 | 1 | 25.00 | 30.00 | 12.34 [5.0, 20.0] | 10.00 | 50.00 [25.0, 75.0] | 0.30 |" \
        in out


def test_check_config_names_the_bad_key(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: {resolution: 0}\n")
    proc = subprocess.run([sys.executable, "-m", "taskspace", "check-config", str(bad)], capture_output=True, text=True)
    assert proc.returncode == 2 and "data.resolution" in proc.stderr
    good = tmp_path / "good.yaml"
    good.write_text("data: {tasks: [organic-c1-o1, geometric-c1-o1]}\n")
    proc = subprocess.run([sys.executable, "-m", "taskspace", "check-config", str(good)], capture_output=True, text=True)
    assert proc.returncode == 0 and "2 tasks" in proc.stdout

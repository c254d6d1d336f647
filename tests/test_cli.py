"""The command line on a finished run and on config files."""

import subprocess
import sys

import pandas as pd

from taskspace.cli import main
from taskspace.results import write_table


def test_summary_prints_percentages(tmp_path, capsys):
    write_table(
        pd.DataFrame(
            [{"method": "oracle", "n_targets": 2, "mean_optimal_error": 0.25, "mean_chosen_error": 0.25,
              "mean_relative_increase": 0.0, "median_relative_increase": 0.0, "top1_hit_rate": 1.0,
              "mean_rank_corr": float("nan")},
             {"method": "random", "n_targets": 2, "mean_optimal_error": 0.25, "mean_chosen_error": 0.3,
              "mean_relative_increase": 0.1234, "median_relative_increase": 0.1, "top1_hit_rate": 0.5,
              "mean_rank_corr": float("nan")}]
        ),
        tmp_path / "summary.parquet",
    )
    assert main(["summary", str(tmp_path), "--markdown"]) == 0
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
    assert main(["summary", str(tmp_path), "--markdown"]) == 0
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

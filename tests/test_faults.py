"""Faults, injected for real: Snakemake killed with SIGKILL during expert training and again during the transfer
stage, then the documented recovery (`snakemake --unlock`, the same command) gives the tables of an uninterrupted run;
`recommend` twice at once while the workflow rewrites embeddings.h5 answers as it does alone.

(A job killed while writing an HDF5 file, and a full disk, are in tests/test_durability.py.)
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import REPO, snakemake, write_config
from test_check import assert_tables_equal, copy_run
from test_recommend import TASK, export_task
from taskspace.check import check_run

pytestmark = pytest.mark.workflow

HANG_S = 3600  # a guard against a hung run only, never a speed limit


def _start(directory: Path, log: Path) -> subprocess.Popen:
    """`snakemake --cores 2` as a user starts it, in its own session (so that what it leaves running can be found)."""
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(directory),
           "--configfile", str(directory / "config.yaml"), "--cores", "2"]
    with open(log, "w") as out:
        return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=dict(os.environ, TASKSPACE_DEVICE="cpu"),
                                start_new_session=True)


def _kill_when(proc: subprocess.Popen, ready, what: str, log: Path) -> None:
    """SIGKILL the Snakemake process (only it: its running jobs are orphaned, as when its node dies) once ready()."""
    deadline = time.monotonic() + HANG_S
    while not ready():
        assert proc.poll() is None, f"the run ended before {what}:\n{log.read_text()}"
        assert time.monotonic() < deadline, f"never saw {what}"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL


def _wait_orphans(pgid: int) -> None:
    """Let the jobs the killed Snakemake left behind run out (a user's next command may overlap them; this test
    then checks the run itself, not the race), killing them if they hang."""
    deadline = time.monotonic() + HANG_S
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    os.killpg(pgid, signal.SIGKILL)


def test_kill_9_of_snakemake_in_training_and_in_transfer_then_unlock_and_rerun(tiny_run, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    write_config(run)
    results = run / "results"
    logs = results / "logs"

    # 1. During expert training: an expert's job has started and no expert is finished.
    first = _start(run, tmp_path / "first.log")
    try:
        _kill_when(first, lambda: any((logs / "train_expert").glob("*.log"))
                   and not any((results / "experts").glob("*.pt")), "an expert in training", tmp_path / "first.log")
    finally:
        _wait_orphans(first.pid)
    report = check_run(run)
    assert not report.ok and {p.status for p in report.problems} >= {"missing"}
    # Snakemake's lock is still held: the same command is refused until --unlock.
    locked = snakemake(run, "--cores", "2", check=False)
    assert locked.returncode != 0 and "--unlock" in locked.stdout + locked.stderr
    snakemake(run, "--unlock")

    # 2. During the transfer stage: the batch job has computed at least one pair.
    second = _start(run, tmp_path / "second.log")
    try:
        transfer_log = logs / "transfer_batch" / "000.log"
        _kill_when(second, lambda: transfer_log.is_file() and "(computed)" in transfer_log.read_text(),
                   "a transfer pair computed", tmp_path / "second.log")
    finally:
        _wait_orphans(second.pid)
    snakemake(run, "--unlock")

    # 3. The same command finishes the run.
    snakemake(run, "--cores", "2")
    report = check_run(run)
    assert report.ok, report.problems
    assert_tables_equal(tiny_run, run)
    assert not list(results.rglob(".*.tmp"))  # no temporary file left anywhere


RECOMMEND = [sys.executable, "-m", "taskspace", "recommend", "--method", "task2vec_mc", "--threads", "1", "--json",
             "--quiet", "--name", TASK]

REWRITER = """
import sys, time
from pathlib import Path
from taskspace.io import set_job
from taskspace.results import merge_embeddings
set_job("gather_embeddings", {})  # the job's stamp, as its script sets it
results, stop = Path(sys.argv[1]), Path(sys.argv[2])
parts = sorted(str(p) for p in (results / "embeddings").glob("part-*.h5"))
n = 0
while not stop.exists():
    merge_embeddings(parts, str(results / "embeddings.h5"))  # what the gather_embeddings job does
    n += 1
print(n)
"""


def test_two_recommends_at_once_while_embeddings_h5_is_rewritten(tiny_run, tmp_path):
    run = copy_run(tiny_run, tmp_path / "run")
    folder = export_task(run, TASK, tmp_path / "birds")
    alone = subprocess.run(RECOMMEND + [str(folder), "--run", str(run)], capture_output=True, text=True, check=True)
    expected = json.loads(alone.stdout)

    stop = tmp_path / "stop"
    rewriter = subprocess.Popen([sys.executable, "-c", REWRITER, str(run / "results"), str(stop)],
                                stdout=subprocess.PIPE, text=True)
    try:
        time.sleep(0.5)
        both = [subprocess.Popen(RECOMMEND + [str(folder), "--run", str(run)], stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True) for _ in range(2)]
        outs = [p.communicate(timeout=HANG_S) for p in both]
    finally:
        stop.touch()
        rewrites = int(rewriter.communicate(timeout=HANG_S)[0])
    assert rewrites >= 2  # embeddings.h5 was replaced while they read it
    for proc, (out, err) in zip(both, outs):
        assert proc.returncode == 0, err
        assert json.loads(out) == expected
    assert check_run(run).ok

"""The workflow through a real SLURM: `snakemake --profile slurm` (slurm/config.yaml) on a private test cluster.

A module fixture starts munged + slurmctld + slurmd on loopback in a temporary directory (tests/slurm_cluster.py;
the Debian packages are installed with apt-get when missing) and always stops them. The tests run the repository's
profile from the repository root, as a user would, adding only what this test cluster needs on the command line
(TEST_CLUSTER_ARGS). Skipped only where the cluster cannot exist: no root, or no SLURM binaries and no apt-get.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

import slurm_cluster
from conftest import REPO, job_counts, write_config

pytestmark = pytest.mark.workflow

# Only for this test cluster, which has no accounting database: job states from squeue (the plugin's default,
# sacct, fails there and Snakemake then waits forever), kept by slurmctld for MinJobAge=600 s; and a first status
# check after 2 s instead of 40 s (the jobs here take seconds, not minutes). A real cluster needs neither.
# Only a guard against a hung run, never a speed limit: the tiny config takes 50 s on a quiet machine and 352 s on a
# busy one; a command or wait that lasts this long is stuck.
HANG_S = 3600
TEST_CLUSTER_ARGS = ["--slurm-status-command", "squeue", "--slurm-init-seconds-before-status-checks", "2"]
# The test node: the machine's 2 cores advertised as 8 CPUs and 8 fake GPUs, so that SLURM starts what a local
# `--cores 2` run would interleave instead of queueing it (the OS shares the cores); 64 GB so every request fits.
CLUSTER = dict(cpus=8, gpus=8, memory_mb=64000)
TABLES = ("transfer.parquet", "summary.parquet", "selection.parquet", "tasks.parquet")
TASKS = ["geometric-c1-o1", "organic-c1-o1", "organic-c1-o2"]


@pytest.fixture(scope="module")
def cluster(request):
    reason = slurm_cluster.unavailable_reason()
    if reason:
        pytest.skip(reason)
    slurm_cluster.install()  # apt-get, only when a binary is missing; a failure is an error, not a skip
    c = slurm_cluster.SlurmCluster(**CLUSTER)
    request.addfinalizer(c.cleanup)  # registered before start: the daemons are stopped whatever happens
    c.start()
    return c


def slurm_env(cluster: slurm_cluster.SlurmCluster) -> dict[str, str]:
    env = dict(cluster.env)
    # The venv first on PATH, as on a login node with it activated (jobs inherit the environment); the cluster's
    # bin/ (its srun wrapper) before it. No real GPU here: "auto" exercises the CPU fallback of jobs that SLURM
    # gave a (fake) GPU; where CUDA works, the CPU is forced so the tables can equal the local CPU run's.
    env["PATH"] = os.pathsep.join([str(cluster.bin_dir), str(Path(sys.executable).parent), env.get("PATH", "")])
    try:
        import torch

        env["TASKSPACE_DEVICE"] = "cpu" if torch.cuda.is_available() else "auto"
    except ImportError:  # pragma: no cover
        env["TASKSPACE_DEVICE"] = "cpu"
    return env


def slurm_command(directory: Path, *args: str, timeout: int = HANG_S) -> list[str]:
    """`snakemake --profile slurm` as run from the repository root, under a hard timeout (never hangs CI)."""
    return [
        "timeout", "-k", "30", str(timeout), sys.executable, "-m", "snakemake", "--profile", "slurm",
        "--directory", str(directory), "--configfile", str(directory / "config.yaml"), *TEST_CLUSTER_ARGS, *args,
    ]


def run_slurm(cluster, directory: Path, *args: str, timeout: int = HANG_S) -> subprocess.CompletedProcess:
    return subprocess.run(slurm_command(directory, *args, timeout=timeout), cwd=REPO, env=slurm_env(cluster),
                          capture_output=True, text=True)


def submitted(output: str) -> dict[str, str]:
    """{SLURM job id: Snakemake job or group id} from the log lines of the jobs Snakemake submitted."""
    return dict((m.group(2), m.group(1)) for m in re.finditer(r"Job (\S+) has been submitted with SLURM jobid (\d+)",
                                                                output))


def scontrol_job(cluster, job_id: str) -> dict[str, str]:
    out = subprocess.run(["scontrol", "show", "job", "-o", job_id], env=cluster.env, capture_output=True, text=True,
                         timeout=HANG_S).stdout
    return dict(re.findall(r"(\w+)=(\S*)", out))


def assert_tables_equal(a: Path, b: Path) -> None:
    for table in TABLES:
        x = pd.read_parquet(a / "results" / table).drop(columns=["path"], errors="ignore")
        y = pd.read_parquet(b / "results" / table).drop(columns=["path"], errors="ignore")
        x = x.drop(columns=[c for c in x.columns if c.startswith("seconds")])
        y = y.drop(columns=[c for c in y.columns if c.startswith("seconds")])
        pd.testing.assert_frame_equal(x, y, obj=table)


def log_of(proc: subprocess.CompletedProcess) -> str:
    return f"exit {proc.returncode}\n--- stdout ---\n{proc.stdout[-20000:]}\n--- stderr ---\n{proc.stderr[-20000:]}"


@pytest.fixture(scope="module")
def slurm_run(cluster, tmp_path_factory):
    directory = tmp_path_factory.mktemp("slurm_run")
    write_config(directory)
    start = time.perf_counter()
    proc = run_slurm(cluster, directory)
    return directory, proc, time.perf_counter() - start


def test_profile_runs_the_tiny_config_through_slurm(cluster, slurm_run, tiny_run):
    directory, proc, seconds = slurm_run
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, log_of(proc) + "\n" + cluster.logs()

    # Every non-local job went through sbatch, and SLURM ran each to completion.
    ids = submitted(out)
    jobs = {j["id"]: j for j in cluster.jobs()}
    assert ids and set(ids) <= set(jobs), (ids, jobs)
    assert {jobs[i]["state"] for i in ids} == {"COMPLETED"}, jobs
    assert all(jobs[i]["name"].startswith("taskspace_") for i in ids)  # slurm-jobname-prefix of the profile
    comments = sorted(jobs[i]["comment"] for i in ids)
    # 4 splits, the probe, 3 experts, one transfer job (4 experts' columns), one embedding job (3 tasks, every
    # method) and MODEL2VEC, one submission each; init_random_probe and the aggregates are local rules.
    assert comments.count("rule_train_probe") == 1
    assert sorted(c for c in comments if c.startswith("rule_train_expert")) == [
        f"rule_train_expert_wildcards_{t}" for t in TASKS]
    assert sum(c.startswith("rule_split_task") for c in comments) == len(TASKS) + 1
    assert comments.count("rule_transfer_batch_wildcards_000") == 1
    assert comments.count("rule_embed_batch_wildcards_000") == 1
    assert comments.count("rule_learn_model2vec_wildcards_model2vec") == 1
    assert len(ids) == 5 + 3 + 1 + 1 + 1
    assert "init_random_probe" not in " ".join(comments) and "gather" not in " ".join(comments)

    # What each submission asked for: one GPU per GPU job, none for the splits and MODEL2VEC; the batch jobs'
    # time limits grow with their work (5 min a transfer pair, 10 min an embedding).
    for sid in ids:
        info, comment = scontrol_job(cluster, sid), jobs[sid]["comment"]
        gpus = int(m.group(1)) if (m := re.search(r"gpu:(\d+)$", info.get("TresPerJob", ""))) else 0  # --gpus=N
        assert gpus == (0 if comment.startswith(("rule_split_task", "rule_learn_model2vec")) else 1), (comment, info)
        if comment.startswith(("rule_transfer_batch", "rule_embed_batch")):
            assert info["MinMemoryNode"] == "4000M" and info["NumCPUs"] == "1", info
        if comment.startswith("rule_transfer_batch"):
            assert info["TimeLimit"] == "01:00:00", info  # 12 pairs x 5 min
        if comment.startswith("rule_embed_batch"):
            assert info["TimeLimit"] == "03:30:00", info  # 3 tasks x 7 methods x 10 min

    # The jobs ran inside SLURM: slurmd launched each batch job, and in it one job step (srun) running its script.
    slurmd_log = (cluster.log_dir / "slurmd.log").read_text()
    steps = {sid: len(re.findall(rf"launch task StepId={sid}\.\d+ ", slurmd_log)) for sid in ids}
    for sid in ids:
        assert f"Launching batch job {sid} " in slurmd_log, sid
    assert all(n == 1 for n in steps.values()), steps

    # The same tables as the local run of the same config.
    assert_tables_equal(tiny_run, directory)
    print(f"\nSLURM run of the tiny config: {seconds:.0f} s")


def test_scancel_of_a_running_job_is_reported_and_a_rerun_finishes(cluster, tiny_run, tmp_path):
    # A finished local run with two experts' outputs removed: this SLURM run trains them again (two jobs side by
    # side), then the transfer job and the aggregates. One expert is cancelled while it runs.
    directory = tmp_path / "run"
    shutil.copytree(tiny_run, directory, ignore=shutil.ignore_patterns("slurm_logs", "locks", "incomplete"))
    cancelled, survivor = "organic-c1-o1", "organic-c1-o2"
    for task in (cancelled, survivor):
        for suffix in (".pt", ".metrics.parquet"):
            (directory / "results" / "experts" / f"{task}{suffix}").unlink()
    untouched = {p: p.stat().st_mtime_ns for p in (directory / "results" / "embeddings").rglob("*.h5")}
    # the stored embeddings, and the stored pairs of the experts that are not retrained
    untouched.update({p: p.stat().st_mtime_ns for p in (directory / "results" / "reuse").rglob("*") if p.is_file()
                      and p.parts[-3] in ("embeddings", "transfer") and "organic-c1-o" not in p.parent.name})
    untouched[directory / "results" / "probe" / "probe.pt"] = (directory / "results" / "probe" / "probe.pt").stat(
    ).st_mtime_ns

    log_path = tmp_path / "first.log"
    # --retries 0: the profile's retry would resubmit the cancelled job (with doubled memory and time).
    with open(log_path, "w") as log:
        proc = subprocess.Popen(slurm_command(directory, "--retries", "0"), cwd=REPO,
                                env=slurm_env(cluster), stdout=log, stderr=subprocess.STDOUT, text=True)
        try:
            target, deadline = None, time.monotonic() + HANG_S
            while target is None and time.monotonic() < deadline and proc.poll() is None:
                target = next((j["id"] for j in cluster.jobs()
                               if j["comment"] == f"rule_train_expert_wildcards_{cancelled}"
                               and j["state"] == "RUNNING"), None)
                time.sleep(0.3)
            assert target, "the expert never ran:\n" + log_path.read_text()
            subprocess.run(["scancel", target], env=cluster.env, check=True, timeout=HANG_S)
            rc = proc.wait(timeout=HANG_S)
        finally:
            if proc.poll() is None:
                proc.kill()
    out = log_path.read_text()

    assert rc != 0, out
    assert {j["id"]: j["state"] for j in cluster.jobs()}[target] == "CANCELLED"
    # Snakemake names the failed job, its SLURM job id and state, and both logs: the rule's and SLURM's.
    assert "Error in rule train_expert" in out, out
    error = out[out.index("Error in rule train_expert"):]
    assert f"SLURM-job '{target}' failed, SLURM status is: 'CANCELLED'" in error, out
    assert f"external_jobid: {target}" in error, out
    slurm_log = directory / ".snakemake" / "slurm_logs" / "rule_train_expert" / cancelled / f"{target}.log"
    assert str(slurm_log) in error and f"results/logs/train_expert/{cancelled}.log" in error, out
    assert "CANCELLED" in slurm_log.read_text()  # slurmstepd's "*** JOB n CANCELLED AT ... ***"
    # The other expert finished (keep-going) and stays; what was there before is untouched; nothing downstream ran.
    assert (directory / "results" / "experts" / f"{survivor}.pt").exists()
    assert not (directory / "results" / "experts" / f"{cancelled}.pt").exists()
    assert {p: p.stat().st_mtime_ns for p in untouched} == untouched

    dry = run_slurm(cluster, directory, "-n")
    counts = job_counts(dry.stdout)
    # Left to do: the cancelled expert only (no split, probe or embedding), the transfer job (it could not start
    # without the cancelled expert), the aggregates.
    assert counts.get("train_expert") == 1, dry.stdout
    assert not {"split_task", "train_probe", "embed_batch"} & set(counts), dry.stdout
    assert counts.get("transfer_batch") == 1, dry.stdout

    rerun = run_slurm(cluster, directory)
    assert rerun.returncode == 0, log_of(rerun)
    assert (directory / "results" / "experts" / f"{cancelled}.pt").exists()
    assert {p: p.stat().st_mtime_ns for p in untouched} == untouched
    assert_tables_equal(tiny_run, directory)


def test_a_transfer_job_cancelled_midway_is_rerun_reusing_its_finished_pairs(cluster, tmp_path):
    """The transfer job of a finished run is redone through SLURM and cancelled after its first pairs: the rerun
    computes only the pairs it had not finished, and the tables equal those of the uninterrupted run."""
    from conftest import CONFIGS, snakemake
    import yaml

    # One image per forward pass, so the 12 pairs take long enough to cancel the job between two of them.
    transfer = {**yaml.safe_load((CONFIGS / "tiny.yaml").read_text())["transfer"], "batch_size": 1}
    reference = tmp_path / "reference"
    reference.mkdir()
    write_config(reference, transfer=transfer)
    snakemake(reference, "--cores", "2")
    directory = tmp_path / "run"
    shutil.copytree(reference, directory, ignore=shutil.ignore_patterns("slurm_logs", "locks", "incomplete"))
    results = directory / "results"
    for path in [results / "transfer" / "part-000.parquet", results / "transfer.parquet",
                 *(results / "reuse" / "transfer").rglob("*.parquet")]:
        path.unlink()
    log = results / "logs" / "transfer_batch" / "000.log"
    log.unlink()

    with open(tmp_path / "first.log", "w") as out:
        proc = subprocess.Popen(slurm_command(directory, "--retries", "0"), cwd=REPO,
                                env=slurm_env(cluster), stdout=out, stderr=subprocess.STDOUT, text=True)
        try:
            target, deadline = None, time.monotonic() + HANG_S
            while time.monotonic() < deadline and proc.poll() is None:
                if log.is_file() and log.read_text().count("(computed)") >= 2:
                    target = next(j["id"] for j in cluster.jobs() if j["comment"] == "rule_transfer_batch_wildcards_000"
                                  and j["state"] == "RUNNING")
                    break
                time.sleep(0.05)
            assert target, "the transfer job never got going:\n" + (tmp_path / "first.log").read_text()
            subprocess.run(["scancel", target], env=cluster.env, check=True, timeout=HANG_S)
            assert proc.wait(timeout=HANG_S) != 0
        finally:
            if proc.poll() is None:
                proc.kill()
    assert {j["id"]: j["state"] for j in cluster.jobs()}[target] == "CANCELLED"
    assert not (results / "transfer" / "part-000.parquet").exists()
    finished = {p: p.stat().st_ino for p in (results / "reuse" / "transfer").rglob("*.parquet")}
    assert 2 <= len(finished) < 12, sorted(finished)

    rerun = run_slurm(cluster, directory)
    assert rerun.returncode == 0, log_of(rerun)
    stored = {p: p.stat().st_ino for p in (results / "reuse" / "transfer").rglob("*.parquet")}
    assert len(stored) == 12 and all(stored[p] == ino for p, ino in finished.items())  # finished pairs reused
    text = log.read_text()
    assert text.count("(computed)") == 12 - len(finished) and text.count("(reused") == len(finished), text
    assert_tables_equal(reference, directory)


def test_a_partition_that_does_not_exist_is_named_in_the_error(cluster, tmp_path):
    write_config(tmp_path)
    proc = run_slurm(cluster, tmp_path, "--retries", "0", "--set-resources", "split_task:slurm_partition=nosuchpart")
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    assert "SLURM sbatch failed" in out and "Invalid partition name specified" in out, out
    assert "-p nosuchpart" in out, out  # the sbatch call, with the partition, is in the message
    assert not (tmp_path / "results" / "tasks.parquet").exists()

"""A real, private, single-node SLURM cluster on loopback, for tests and benchmarks.

``SlurmCluster(...).start()`` runs its own munged, slurmctld and slurmd, all in a fresh directory under /tmp (own
config, state, spool, logs, munge socket and free TCP ports), so it neither needs nor touches a system SLURM or
munge and several clusters can run side by side. ``stop()`` cancels the cluster's jobs and stops its daemons by
pid, after checking each pid's process name. Everything SLURM-related must run with ``cluster.env`` (it sets
``SLURM_CONF``; the snakemake SLURM plugin submits with ``--export=ALL``, so jobs inherit it).

Needs root (slurmd runs as root, munged as the ``munge`` user) and the Debian packages ``slurmctld slurmd
slurm-client munge``; ``install()`` installs them with apt-get when they are missing. The node advertises a fake
GPU per ``gpus`` (gres backed by /dev/null: jobs see ``CUDA_VISIBLE_DEVICES`` but no real device, and the code
falls back to the CPU), and may advertise more CPUs and memory than the machine has (``SlurmdParameters=
config_overrides``), so that rules sized for a real cluster can be scheduled.

Command line (used by CI debugging and by hand): ``python tests/slurm_cluster.py`` starts a cluster, prints the
``SLURM_CONF`` to export, and stops it on Enter or Ctrl-C.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

PACKAGES = ["slurmctld", "slurmd", "slurm-client", "munge"]
BINARIES = ["slurmctld", "slurmd", "sbatch", "srun", "squeue", "scancel", "sinfo", "munged"]


def _which(name: str) -> str | None:
    return shutil.which(name) or next(
        (str(p) for d in ("/usr/sbin", "/usr/bin", "/sbin") if (p := Path(d) / name).exists()), None
    )


def missing_binaries() -> list[str]:
    return [b for b in BINARIES if _which(b) is None]


def unavailable_reason() -> str | None:
    """Why a cluster cannot be started here (None if it can, possibly after ``install()``)."""
    if os.name != "posix" or not hasattr(os, "geteuid"):
        return "SLURM tests need a POSIX machine"
    if os.geteuid() != 0:
        return "SLURM tests need root (slurmd runs as root; munged as the munge user)"
    if missing_binaries() and _which("apt-get") is None:
        return f"SLURM binaries missing ({', '.join(missing_binaries())}) and no apt-get to install them"
    return None


def install(timeout: float = 600) -> None:
    """Install the SLURM and munge packages with apt-get when any binary is missing (needs root)."""
    if not missing_binaries():
        return
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env, timeout=timeout, capture_output=True)
    proc = subprocess.run(
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *PACKAGES],
        env=env, timeout=timeout, capture_output=True, text=True,
    )
    if proc.returncode != 0 or missing_binaries():
        raise RuntimeError(f"apt-get install {' '.join(PACKAGES)} failed:\n{proc.stdout}\n{proc.stderr}")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _process_name(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return None


def _kill_checked(pid_file: Path, name: str, timeout: float = 15) -> None:
    """SIGTERM the pid in ``pid_file`` if it is a process called ``name``; SIGKILL after ``timeout``."""
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return
    if _process_name(pid) != name:
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _process_name(pid) != name:
            return
        time.sleep(0.1)
    if _process_name(pid) == name:
        os.kill(pid, signal.SIGKILL)


class SlurmCluster:
    """One node ``localhost`` (``cpus``, ``memory_mb``, ``gpus`` fake GPUs) in one partition ``debug``."""

    def __init__(self, cpus: int = 2, memory_mb: int = 16000, gpus: int = 1, root: Path | None = None):
        self.cpus, self.memory_mb, self.gpus = cpus, memory_mb, gpus
        self._own_root = root is None
        self.root = Path(root) if root else Path(tempfile.mkdtemp(prefix="taskspace-slurm-"))
        self.root.mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, 0o755)  # the munge user must reach its socket directory
        self.conf = self.root / "slurm.conf"
        self.log_dir = self.root / "log"
        self.munge_dir = self.root / "munge"
        self.munge_socket = self.munge_dir / "munge.socket"
        self.bin_dir = self.root / "bin"
        # SLURM_CONF for every command; bin/ first on PATH for the srun wrapper (see _write_config).
        self.env = dict(os.environ, SLURM_CONF=str(self.conf), PATH=f"{self.bin_dir}:{os.environ.get('PATH', '')}")
        self.started = False

    # -- configuration ----------------------------------------------------------------------------------
    def _write_config(self) -> None:
        for sub in ("state", "spool", "log", "run"):
            (self.root / sub).mkdir(exist_ok=True)
        r = self.root
        lines = [
            "ClusterName=taskspace",
            "SlurmctldHost=localhost(127.0.0.1)",
            f"SlurmctldPort={_free_port()}",
            f"SlurmdPort={_free_port()}",
            "SlurmUser=root",
            "SlurmdUser=root",
            "AuthType=auth/munge",
            "CredType=cred/munge",
            f"AuthInfo=socket={self.munge_socket}",
            "MpiDefault=none",
            "MailProg=/bin/true",
            "SlurmdParameters=config_overrides",
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "SchedulerType=sched/backfill",
            "SchedulerParameters=sched_interval=2,bf_interval=2",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_Core_Memory",
            "ReturnToService=2",
            "MinJobAge=600",
            "KillWait=5",
            "MessageTimeout=20",
            f"SlurmctldPidFile={r / 'run' / 'slurmctld.pid'}",
            f"SlurmdPidFile={r / 'run' / 'slurmd.pid'}",
            f"SlurmdSpoolDir={r / 'spool'}",
            f"StateSaveLocation={r / 'state'}",
            f"SlurmctldLogFile={self.log_dir / 'slurmctld.log'}",
            f"SlurmdLogFile={self.log_dir / 'slurmd.log'}",
            "SlurmctldDebug=info",
            "SlurmdDebug=info",
            "AccountingStorageType=accounting_storage/none",
            "JobCompType=jobcomp/none",
            "JobAcctGatherType=jobacct_gather/none",
            "GresTypes=gpu",
            f"NodeName=localhost NodeAddr=127.0.0.1 CPUs={self.cpus} RealMemory={self.memory_mb}"
            + (f" Gres=gpu:{self.gpus}" if self.gpus else "")
            + " State=UNKNOWN",
            "PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP",
        ]
        self.conf.write_text("\n".join(lines) + "\n")
        # A fake GPU: File= is required (without it the node goes INVAL); one device file per GPU.
        devices = self.root / "dev"
        devices.mkdir(exist_ok=True)
        lines = []
        for i in range(self.gpus):
            (devices / f"gpu{i}").touch()
            lines.append(f"NodeName=localhost Name=gpu File={devices / f'gpu{i}'}\n")
        (self.root / "gres.conf").write_text("".join(lines))
        # Inside a job, snakemake's slurm-jobstep executor starts the rule with `srun` in an environment stripped of
        # every SLURM_* variable but the job id, so a nested srun would not find this private slurm.conf (a real
        # cluster has it at /etc/slurm or serves it "configless"). A wrapper first on PATH puts it back.
        self.bin_dir.mkdir(exist_ok=True)
        wrapper = self.bin_dir / "srun"
        wrapper.write_text(f'#!/bin/sh\nSLURM_CONF={self.conf} exec {_which("srun")} "$@"\n')
        wrapper.chmod(0o755)

    # -- daemons ------------------------------------------------------------------------------------------
    def _start_munge(self) -> None:
        self.munge_dir.mkdir(exist_ok=True)
        key = Path("/etc/munge/munge.key")
        if not key.exists():
            key = self.munge_dir / "munge.key"
            key.write_bytes(os.urandom(1024))
            key.chmod(0o400)
        else:
            shutil.copy(key, self.munge_dir / "munge.key")
            key = self.munge_dir / "munge.key"
        shutil.chown(self.munge_dir, "munge", "munge")
        shutil.chown(key, "munge", "munge")
        self.munge_dir.chmod(0o755)  # munged: the socket directory must be executable by all
        key.chmod(0o400)
        subprocess.run(
            ["runuser", "-u", "munge", "--", _which("munged"), f"--socket={self.munge_socket}",
             f"--key-file={key}", f"--pid-file={self.munge_dir / 'munged.pid'}",
             f"--log-file={self.munge_dir / 'munged.log'}", f"--seed-file={self.munge_dir / 'munged.seed'}"],
            check=True, capture_output=True, text=True, timeout=30,
        )
        self._wait(lambda: self.munge_socket.exists(), 300, "munged socket")

    def start(self, timeout: float = 600) -> "SlurmCluster":
        self._write_config()
        try:
            self._start_munge()
            subprocess.run([_which("slurmctld")], env=self.env, check=True, capture_output=True, timeout=30)
            subprocess.run([_which("slurmd"), "-N", "localhost"], env=self.env, check=True, capture_output=True,
                           timeout=30)
            self.started = True
            self._wait(lambda: self.node_state() == "idle", timeout, "node idle")
        except BaseException:
            self.stop()
            raise
        return self

    def node_state(self) -> str:
        proc = subprocess.run(["sinfo", "-h", "-o", "%T"], env=self.env, capture_output=True, text=True, timeout=30)
        return proc.stdout.strip()

    def _wait(self, condition, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return
            time.sleep(0.2)
        raise RuntimeError(f"SLURM test cluster: timed out waiting for {what}\n{self.logs()}")

    def logs(self, tail: int = 40) -> str:
        out = []
        for path in (self.log_dir / "slurmctld.log", self.log_dir / "slurmd.log", self.munge_dir / "munged.log"):
            try:
                out.append(f"--- {path.name} ---\n" + "\n".join(path.read_text().splitlines()[-tail:]))
            except OSError:
                pass
        return "\n".join(out)

    def jobs(self) -> list[dict[str, str]]:
        """The cluster's jobs that squeue still knows (finished ones for MinJobAge): id, name, state, comment."""
        proc = subprocess.run(
            ["squeue", "-h", "-t", "all", "-o", "%i|%j|%T|%k"], env=self.env, capture_output=True, text=True,
            timeout=30,
        )
        rows = [line.split("|", 3) for line in proc.stdout.splitlines() if line.strip()]
        return [dict(zip(("id", "name", "state", "comment"), row)) for row in rows]

    def stop(self) -> None:
        """Cancel every job, stop slurmd, slurmctld and munged (by pid, name checked); idempotent."""
        if self.conf.exists() and _which("scancel"):
            try:
                subprocess.run(["scancel", "--full", "--user", "root"], env=self.env, capture_output=True,
                               timeout=20)
                deadline = time.monotonic() + 15
                while time.monotonic() < deadline and any(
                    j["state"] in ("RUNNING", "PENDING", "COMPLETING", "CONFIGURING") for j in self.jobs()
                ):
                    time.sleep(0.5)
            except (subprocess.SubprocessError, OSError):
                pass
        _kill_checked(self.root / "run" / "slurmd.pid", "slurmd")
        _kill_checked(self.root / "run" / "slurmctld.pid", "slurmctld")
        _kill_checked(self.munge_dir / "munged.pid", "munged")
        self.started = False

    def cleanup(self) -> None:
        self.stop()
        if self._own_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> "SlurmCluster":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.cleanup()


if __name__ == "__main__":
    reason = unavailable_reason()
    if reason:
        raise SystemExit(reason)
    install()
    with SlurmCluster() as cluster:
        print(f"export SLURM_CONF={cluster.conf}")
        print(cluster.node_state())
        try:
            input("SLURM is up; Enter stops it.\n")
        except (KeyboardInterrupt, EOFError):
            pass

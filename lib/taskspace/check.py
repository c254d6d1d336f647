"""``taskspace check``: does a run's ``results/`` hold what its config implies, readable and made by that config?

Every artifact the plan lists (``taskspace.plan``) is opened and read; the job stamp it carries (rule, a digest of
each param of the job that wrote it, seed, taskspace version; ``taskspace.io.set_job``) is compared with the params
the current config gives that job. Problems, each with the command that redoes the file:

- ``missing``: not there;
- ``corrupt``: there but unreadable (truncated, not HDF5/Parquet/a checkpoint, a refused checkpoint);
- ``foreign``: readable, but written by another rule or for another task;
- ``stale``: made by a different config section, seed or taskspace version, or carrying no stamp;
- ``incomplete``: Snakemake marked its job as started and never finished (a killed run);
- ``leftover``: a temporary file of a write that was killed (nothing uses it; remove it).

The reuse store (``results/reuse``) is a cache checked by content digests whenever it is used, not here.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shlex
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .errors import ConfigError

STATUSES = ("missing", "corrupt", "foreign", "stale", "incomplete", "leftover")


@dataclass
class Problem:
    path: str
    status: str
    detail: str
    rule: str | None = None


@dataclass
class CheckReport:
    run: str
    configfiles: list[str]
    n_artifacts: int
    problems: list[Problem] = field(default_factory=list)
    command: str | None = None

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict:
        return {
            "run": self.run,
            "configfiles": self.configfiles,
            "artifacts": self.n_artifacts,
            "ok": self.ok,
            "problems": [asdict(p) for p in self.problems],
            "command": self.command,
        }


def load_run_config(run: Path, configfiles: list[str] | None) -> tuple[dict, list[str]]:
    """The config a ``snakemake`` run in ``run`` reads (:func:`taskspace.plan.config_files`): each ``--configfile``
    in order, or else ``run/config.yaml``."""
    from .plan import config_files, load_config_files

    files = config_files(run, configfiles)
    if not configfiles and not files[0].is_file():
        raise ConfigError(f"{run}: no config.yaml there and no --configfile given")
    return load_config_files(files), [str(f) for f in files]


def _read_h5(path: Path, task: str | None) -> None:
    import h5py

    from .results import read_task

    if task is not None:
        _, attrs = read_task(path, labels=False)
        with h5py.File(path, "r") as f:
            if "labels" in f:
                f["labels"][()]
        if attrs.get("task") != task:
            raise _Foreign(f"a task file of {attrs.get('task')!r}, not of {task!r}")
        return

    def read(name, obj):
        if isinstance(obj, h5py.Dataset):
            obj[()]

    with h5py.File(path, "r") as f:
        f.visititems(read)


class _Foreign(Exception):
    pass


def _read(path: Path, rule: str, wildcards: dict, quick: bool) -> None:
    """Read ``path`` through (headers only when ``quick``); raises on a corrupt file, _Foreign on another's."""
    suffix = path.suffix
    if suffix == ".h5":
        if quick:
            import h5py

            with h5py.File(path, "r"):
                pass
        else:
            _read_h5(path, wildcards.get("task") if rule == "split_task" else None)
    elif suffix == ".pt":
        from .results import load_checkpoint

        load_checkpoint(path)
    elif suffix == ".parquet":
        import pyarrow.parquet as pq

        pq.read_schema(path) if quick else pq.read_table(path)
    elif suffix == ".png":
        from PIL import Image

        with Image.open(path) as im:
            im.verify()
    elif suffix == ".csv":
        import pandas as pd

        pd.read_csv(path)


def _stamp_problem(stamp: dict | None, rule: str, wildcards: dict, params: dict, version: str) -> str | None:
    """Why an artifact's stamp says it was not made by this job of the current config, or None."""
    from .io import params_digest

    if stamp is None:
        return "it carries no job stamp (written outside the workflow, or by a taskspace that did not stamp artifacts)"
    if stamp.get("rule") != rule:
        raise _Foreign(f"written by rule {stamp.get('rule')!r}, not {rule!r}")
    if dict(stamp.get("wildcards") or {}) != wildcards:
        raise _Foreign(f"written for {stamp.get('wildcards')}, not {wildcards}")
    reasons = []
    made = stamp.get("params") or {}
    changed = sorted(k for k in set(made) | set(params) if k != "version"
                     and made.get(k) != (params_digest(params[k]) if k in params else None))
    if "seed" in changed and stamp.get("seed") is not None:
        reasons.append(f"made with seed {stamp.get('seed')}, the config's is {params.get('seed')}")
        changed.remove("seed")
    if changed:
        reasons.append("made by a different config: " + ", ".join(changed) + " differ")
    if stamp.get("taskspace_version") != version:
        reasons.append(f"written by taskspace {stamp.get('taskspace_version')}, this is {version}")
    return "; ".join(reasons) or None


def _incomplete_marker(run: Path, path: str) -> Path:
    """Where Snakemake marks ``path`` (relative to the run) as being made by a job that has not finished."""
    b64 = base64.urlsafe_b64encode(path.encode()).decode()
    parts = [b64[i:i + 254] for i in range(0, len(b64), 254)]
    parts = ["@" + s for s in parts[:-1]] + [parts[-1]]
    return run.joinpath(".snakemake", "incomplete", *parts)


def _command(run: Path, configfiles: list[str], redo: list[str]) -> str:
    words = ["snakemake", "--cores", "all"]
    if run.resolve() != Path.cwd().resolve():
        words += ["--directory", str(run)]
    if configfiles != [str(run / "config.yaml")]:
        for f in configfiles:
            words += ["--configfile", f]
    return shlex.join(words + ["--forcerun", *redo])


def check_run(run: str | os.PathLike = ".", configfiles: list[str] | None = None, quick: bool = False) -> CheckReport:
    """Check every artifact the config of ``run`` implies; see the module's docstring."""
    from . import __version__
    from .plan import effective_config
    from .io import temporary_state
    from .results import read_stamp
    from .plan import RunPlan

    run = Path(run)
    if not run.is_dir():
        raise FileNotFoundError(f"{run}: no such run folder")
    config, files = load_run_config(run, configfiles)
    config = effective_config(config)
    with contextlib.chdir(run):  # paths in the config are relative to the run, as for snakemake --directory
        plan = RunPlan(config, __version__)
    artifacts = plan.artifacts()
    report = CheckReport(run=str(run), configfiles=files, n_artifacts=len(artifacts))
    params_cache: dict = {}
    for a in artifacts:
        path = run / a.path
        wildcards = dict(a.wildcards)

        def add(status: str, detail: str) -> None:
            report.problems.append(Problem(a.path, status, detail, a.rule))

        if not path.is_file():
            add("missing", "not there")
            continue
        key = (a.rule, a.wildcards)
        if key not in params_cache:
            params_cache[key] = plan.params(a.rule, wildcards)
        try:
            _read(path, a.rule, wildcards, quick)
            stamp = read_stamp(path)
            why = _stamp_problem(stamp, a.rule, wildcards, params_cache[key], __version__) \
                if path.suffix in (".h5", ".pt", ".parquet") else None
        except _Foreign as err:
            add("foreign", str(err))
            continue
        except FileNotFoundError:
            add("missing", "not there")
            continue
        except Exception as err:  # noqa: BLE001 - any failure to read is what is reported
            add("corrupt", f"cannot be read: {str(err).splitlines()[0] if str(err) else type(err).__name__}")
            continue
        if _incomplete_marker(run, a.path).exists():
            add("incomplete", "Snakemake started its job and never saw it finish (an interrupted run); rerun it")
        elif why:
            add("stale", why)
    results = run / "results"
    if results.is_dir():
        for tmp in sorted(results.rglob(".*.tmp")):
            state = temporary_state(tmp)
            if state != "running":
                report.problems.append(Problem(str(tmp.relative_to(run)), "leftover", state))
    redo = [p.path for p in report.problems if p.status != "leftover"]
    commands = []
    if redo:
        commands.append(_command(run, files, redo))
    leftovers = [p.path for p in report.problems if p.status == "leftover"]
    if leftovers:
        commands.append(shlex.join(["rm", "-f", *[str(run / p) for p in leftovers]]))
    report.command = " && ".join(commands) or None
    return report


def format_report(report: CheckReport) -> str:
    lines = []
    if report.ok:
        lines.append(f"{report.run}: all {report.n_artifacts} artifacts present, readable and made by the current "
                     f"config ({', '.join(report.configfiles)})")
        return "\n".join(lines)
    counts = {s: sum(p.status == s for p in report.problems) for s in STATUSES}
    lines.append(f"{report.run}: {len(report.problems)} problem(s) among {report.n_artifacts} artifacts ("
                 + ", ".join(f"{n} {s}" for s, n in counts.items() if n) + f"); config {', '.join(report.configfiles)}")
    width = max(len(p.path) for p in report.problems)
    for p in report.problems:
        lines.append(f"  {p.status:<10} {p.path:<{width}}  {p.detail}")
    lines.append("to redo them:")
    lines.append(f"  {report.command}")
    return "\n".join(lines)


def main_check(run: str, configfiles: list[str] | None, as_json: bool, quick: bool) -> int:
    """``taskspace check``: print the report; 0 when the run is whole, 1 when anything is listed."""
    report = check_run(run, configfiles, quick=quick)
    print(json.dumps(report.as_dict(), indent=2) if as_json else format_report(report))
    return 0 if report.ok else 1

"""Artifacts survive crashes and can be shared: the umask's permissions, fsync before the rename, a killed write's
temporary file cleaned up, a full disk named, untrusted files refused, names that cannot leave results/."""

from __future__ import annotations

import errno
import os
import pickle
import signal
import stat
import struct
import subprocess
import sys
import textwrap
import time
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from taskspace import io
from taskspace.data import TaskData
from taskspace.errors import ArtifactError, ArtifactWriteError, ConfigError
from taskspace.results import load_checkpoint, read_table, read_task, save_checkpoint, write_table, write_task


def _task(n: int = 4, side: int = 8) -> TaskData:
    return TaskData(
        images=np.arange(n * side * side * 3, dtype=np.uint64).astype(np.uint8).reshape(n, side, side, 3),
        labels=np.arange(n, dtype=np.int64) % 2,
        is_train=np.arange(n) % 2 == 0,
        class_names=["a", "b"],
        attrs={"seed": 1},
    )


def _write_each_kind(folder: Path) -> list[Path]:
    from matplotlib.figure import Figure

    from taskspace.plots import _save_png

    paths = [folder / "t.h5", folder / "t.parquet", folder / "t.pt", folder / "t.png"]
    write_task(paths[0], "t", "task", _task())
    write_table(pd.DataFrame({"a": [1]}), paths[1])
    save_checkpoint(paths[2], {"w": torch.zeros(2)})
    _save_png(Figure(figsize=(1, 1)), paths[3])
    return paths


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o002, 0o664)])
def test_artifacts_get_the_permissions_the_umask_gives_a_new_file(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        paths = _write_each_kind(tmp_path)
        with open(tmp_path / "by-hand.txt", "w") as fh:  # what open() gives, for comparison
            fh.write("x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "by-hand.txt").stat().st_mode) == mode
    assert {p.name: oct(stat.S_IMODE(p.stat().st_mode)) for p in paths} == {p.name: oct(mode) for p in paths}


def test_the_file_is_synced_before_its_name_appears_and_the_folder_after(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        target = os.readlink(f"/proc/self/fd/{fd}")
        events.append(("fsync", "folder" if os.path.isdir(target) else Path(target).name))
        real_fsync(fd)

    def replace(src, dst):
        events.append(("rename", Path(dst).name))
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    write_table(pd.DataFrame({"a": [1]}), tmp_path / "t.parquet")
    assert [e[0] for e in events] == ["fsync", "rename", "fsync"]
    assert events[0][1].startswith(".t.parquet.") and events[0][1].endswith(".tmp")  # the temporary file's contents
    assert events[1:] == [("rename", "t.parquet"), ("fsync", "folder")]
    events.clear()
    monkeypatch.setenv("TASKSPACE_FSYNC", "0")  # scratch file systems: durability off, the rename still atomic
    write_table(pd.DataFrame({"a": [2]}), tmp_path / "t.parquet")
    assert events == [("rename", "t.parquet")]
    assert read_table(tmp_path / "t.parquet")["a"].tolist() == [2]


KILLED_WRITER = textwrap.dedent("""
    import sys
    import numpy as np
    from taskspace.data import TaskData
    from taskspace.results import write_task
    n = 16000  # 197 MB: the write lasts long enough to be caught midway on a fast disk too
    data = TaskData(images=np.full((n, 64, 64, 3), 7, dtype=np.uint8), labels=np.arange(n) % 2,
                    is_train=np.ones(n, bool), class_names=["a", "b"], attrs={{}})
    print("writing", flush=True)
    write_task(sys.argv[1], "big", "task", data)
    print("done", flush=True)
""")


def test_a_write_killed_midway_leaves_the_old_version_and_its_temporary_file_goes_at_the_next_write(tmp_path):
    target = tmp_path / "tasks" / "big.h5"
    write_task(target, "big", "task", _task())  # the previous version
    before = target.read_bytes()
    proc = subprocess.Popen([sys.executable, "-c", KILLED_WRITER.format(), str(target)], stdout=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout.readline().strip() == "writing"
        # kill -9 once the temporary file holds some of the 197 MB (however fast this machine writes)
        while True:
            tmps = io.temporary_files(target)
            if tmps and tmps[0].stat().st_size > 1_000_000:
                break
            assert proc.poll() is None, "the writer finished before it could be killed"
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    left = io.temporary_files(target)
    assert len(left) == 1 and f"~{proc.pid}~" in left[0].name
    assert target.read_bytes() == before  # the name still holds the previous, complete version
    assert "gone" in io.temporary_state(left[0])
    write_task(target, "big", "task", _task(6))  # the next run's write of the same artifact
    assert io.temporary_files(target) == []
    assert len(read_task(target)[0].images) == 6


def test_a_live_writers_temporary_file_is_left_alone(tmp_path):
    target = tmp_path / "t.parquet"
    alive = tmp_path / f".t.parquet.{io._HOST}~{os.getpid()}~0000.tmp"  # this process: a write in progress
    alive.write_bytes(b"partial")
    other_host = tmp_path / ".t.parquet.elsewhere~1~0000.tmp"
    other_host.write_bytes(b"partial")
    write_table(pd.DataFrame({"a": [1]}), target)
    assert alive.exists() and other_host.exists()
    assert io.temporary_state(alive) == "running" and "another host" in io.temporary_state(other_host)


@pytest.mark.parametrize("where", ["data", "fsync"])
def test_a_full_disk_names_the_artifact_and_keeps_its_previous_version(tmp_path, monkeypatch, where):
    target = tmp_path / "transfer.parquet"
    write_table(pd.DataFrame({"a": [1, 2]}), target)
    if where == "fsync":  # delayed allocation: the file system reports the full disk when the data is flushed
        def fsync(fd):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        monkeypatch.setattr(os, "fsync", fsync)
    else:
        import pyarrow.parquet as pq

        def write_table_full(table, where, **kw):
            with open(where, "wb") as fh:
                fh.write(b"PAR1")
            raise OSError(errno.ENOSPC, "Error writing bytes to file. Detail: [errno 28] No space left on device")

        monkeypatch.setattr(pq, "write_table", write_table_full)
    with pytest.raises(ArtifactWriteError, match=r"transfer\.parquet: could not be written \(No space left on "
                                                 r"device\).*previous version.*unchanged"):
        write_table(pd.DataFrame({"a": [3]}), target)
    monkeypatch.undo()
    assert read_table(target)["a"].tolist() == [1, 2]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["transfer.parquet"]  # no temporary file left


FILE_SIZE_LIMITED = textwrap.dedent("""
    import resource, signal, sys
    import numpy as np, torch
    from taskspace.data import TaskData
    from taskspace.errors import ArtifactWriteError
    from taskspace.results import save_checkpoint, write_task
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))  # the disk is full after 200 kB
    n = 200
    data = TaskData(images=np.full((n, 32, 32, 3), 7, np.uint8), labels=np.arange(n) % 2, is_train=np.ones(n, bool),
                    class_names=["a", "b"], attrs={})
    for write in (lambda: write_task(sys.argv[1], "t", "task", data),
                  lambda: save_checkpoint(sys.argv[2], {"w": torch.zeros(100_000)})):
        try:
            write()
        except ArtifactWriteError as err:
            print("ArtifactWriteError:", err)
""")


def test_a_real_write_failure_of_hdf5_and_torch_names_the_artifact(tmp_path):
    """The operating system refuses the bytes (RLIMIT_FSIZE: EFBIG, as ENOSPC would): h5py's and torch's errors."""
    task, ckpt = tmp_path / "t.h5", tmp_path / "e.pt"
    write_task(task, "t", "task", _task())
    save_checkpoint(ckpt, {"w": torch.ones(3)})
    out = subprocess.run([sys.executable, "-c", FILE_SIZE_LIMITED, str(task), str(ckpt)], capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert len(lines) == 2, out.stdout + out.stderr
    assert lines[0].startswith(f"ArtifactWriteError: {task}: could not be written (File too large)")
    assert lines[1].startswith(f"ArtifactWriteError: {ckpt}: could not be written")
    assert len(read_task(task)[0].images) == 4 and torch.equal(load_checkpoint(ckpt)["w"], torch.ones(3))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e.pt", "t.h5"]


class _Payload:
    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_pickled_payload_in_a_checkpoint_is_refused_not_run(tmp_path):
    marker = tmp_path / "payload-ran"
    bad = tmp_path / "experts" / "evil.pt"
    bad.parent.mkdir()
    with open(bad, "wb") as fh:
        torch.save({"state_dict": {"w": torch.zeros(1)}, "extra": _Payload(str(marker))}, fh)
    with pytest.raises(ArtifactError, match=r"evil\.pt: refused: it holds Python objects"):
        load_checkpoint(bad)
    assert not marker.exists()
    plain = tmp_path / "plain.pt"
    with open(plain, "wb") as fh:
        pickle.dump(_Payload(str(marker)), fh)  # not even a torch archive
    with pytest.raises(ArtifactError, match="plain.pt"):
        load_checkpoint(plain)
    assert not marker.exists()
    truncated = tmp_path / "truncated.pt"
    save_checkpoint(truncated, {"w": torch.zeros(1000)})
    truncated.write_bytes(truncated.read_bytes()[:2000])
    with pytest.raises(ArtifactError, match=r"truncated\.pt: not a readable checkpoint"):
        load_checkpoint(truncated)


def _png_header_only(path: Path, width: int, height: int) -> None:
    """A PNG that claims width x height pixels (a decompression bomb): a valid header, one tiny data chunk."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + chunk(b"IEND", b""))


def test_an_oversized_image_is_a_counted_skip_with_a_warning(tmp_path):
    from PIL import Image

    from taskspace.recommend import read_folder

    for cls in ("a", "b"):
        (tmp_path / cls).mkdir()
        for k in range(2):
            Image.fromarray(np.full((12, 12, 3), 40 * k, np.uint8)).save(tmp_path / cls / f"{k}.png")
    _png_header_only(tmp_path / "a" / "bomb.png", 40_000, 40_000)  # 1.6 billion pixels
    with pytest.warns(UserWarning, match=r"skipped .*bomb\.png: cannot decode image"):
        task = read_folder(tmp_path, 8, progress=False)
    assert len(task.images) == 4 and len(task.skipped) == 1 and "bomb.png" in task.skipped[0]


@pytest.mark.parametrize("section, value, key", [
    ("meta_tasks", {"../../outside": {"targets": "all", "experts": "all"}}, "meta_tasks"),
    ("embeddings", {"methods": ["up/x"], "variants": {"up/x": {"method": "domain"}}}, "embeddings.variants"),
])
def test_names_that_become_paths_cannot_leave_results(section, value, key):
    import yaml

    from conftest import CONFIGS
    from taskspace.plan import validate_config

    cfg = yaml.safe_load((CONFIGS / "tiny.yaml").read_text())
    cfg[section] = {**cfg.get(section, {}), **value} if section == "embeddings" else value
    with pytest.raises(ConfigError, match=key):
        validate_config(cfg)


def test_task_names_with_path_characters_are_refused():
    """Every planned task passes this check before a file is named after it (taxonomy values are slugged first:
    tests/test_sources.py)."""
    from taskspace.data import TaskDataError, TaskSpec, _check_spec

    for name in ("../x", "a/b", ".hidden", "/abs"):
        spec = TaskSpec(name=name, role="task", classes=("a", "b"), n_train=2, n_test=2, taxonomy=(), source="s")
        with pytest.raises(TaskDataError, match="not file-safe"):
            _check_spec(spec)

"""Artifacts: task files and tables round-trip with their provenance; a failed write leaves nothing behind."""

import numpy as np
import pandas as pd
import pytest

from taskspace.data import TaskData
from taskspace.errors import TaskDataError
from taskspace.io import atomic_path
from taskspace.results import read_provenance, read_table, read_task, write_table, write_task


def test_task_file_round_trip(tmp_path):
    data = TaskData(
        images=np.arange(4 * 8 * 8 * 3, dtype=np.uint8).reshape(4, 8, 8, 3),
        labels=np.array([0, 1, 0, 1], dtype=np.int64),
        is_train=np.array([True, True, False, False]),
        class_names=["a", "b"],
        attrs={"source": "synthetic", "seed": 3},
    )
    path = tmp_path / "tasks" / "t.h5"
    write_task(path, "t", "task", data)
    back, attrs = read_task(path)
    np.testing.assert_array_equal(back.images, data.images)
    np.testing.assert_array_equal(back.labels, data.labels)
    np.testing.assert_array_equal(back.is_train, data.is_train)
    assert back.class_names == ["a", "b"]
    assert attrs["n_train"] == 2 and attrs["n_test"] == 2 and attrs["provenance"]["seed"] == 3


def test_unreadable_task_file_names_the_file(tmp_path):
    bad = tmp_path / "broken.h5"
    bad.write_bytes(b"not hdf5")
    with pytest.raises(TaskDataError, match="broken.h5"):
        read_task(bad)


def test_table_carries_provenance(tmp_path):
    df = pd.DataFrame({"expert": ["a"], "test_error": [0.25]})
    write_table(df, tmp_path / "t.parquet", {"transfer": {"l2": 0.001}})
    pd.testing.assert_frame_equal(read_table(tmp_path / "t.parquet"), df)
    meta = read_provenance(tmp_path / "t.parquet")
    assert meta["transfer"] == {"l2": 0.001} and "taskspace_version" in meta


def test_failed_write_leaves_no_file_and_keeps_the_old_one(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("boom")
    assert target.read_text() == "old"
    assert list(tmp_path.iterdir()) == [target]


def test_job_log_lines_and_the_jobs_stderr_share_one_stream(tmp_path, monkeypatch):
    """A workflow script sends stderr to the job's log; the log lines go through that same stream, so a warning
    printed between two lines stays between them instead of overwriting the file from its start."""
    import sys

    from taskspace.stages import job_log

    path = tmp_path / "job.log"
    with open(path, "w") as stream:
        monkeypatch.setattr(sys, "stderr", stream)
        with job_log(path) as say:
            say("first line")
            sys.stderr.write("a warning on stderr\n")  # buffered, as warnings are
            say("second line")
    text = path.read_text()
    assert text.index("first line") < text.index("a warning on stderr") < text.index("second line")

"""The progress display: one final line off a terminal, in-place redraws on one, nothing when disabled."""

import io
import re

from taskspace.progress import Progress


class Terminal(io.StringIO):
    """A text stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def test_a_non_terminal_gets_exactly_one_final_line_with_the_count_and_total():
    stream = io.StringIO()
    with Progress("reading images", 10, "images", stream=stream) as bar:
        for _ in range(10):
            bar.update()
    out = stream.getvalue()
    assert "\r" not in out and out.count("\n") == 1 and out.endswith("\n")
    assert re.fullmatch(r"reading images \[#{24}\] 10/10 images +\d+\.\ds\n", out)


def test_a_partial_bar_and_a_count_without_total():
    stream = io.StringIO()
    with Progress("x", 4, stream=stream) as bar:
        bar.update(3)
    assert re.fullmatch(r"x \[#{18}\.{6}\] 3/4 +\d+\.\ds\n", stream.getvalue())
    stream = io.StringIO()
    with Progress("embedding", unit="images through the probe", stream=stream) as bar:
        bar.update(5)
        bar.update(7)
    assert re.fullmatch(r"embedding: 12 images through the probe +\d+\.\ds\n", stream.getvalue())


def test_disabled_writes_nothing():
    for stream in (io.StringIO(), Terminal()):
        with Progress("x", 4, "images", stream=stream, enabled=False) as bar:
            bar.update(4)
        assert stream.getvalue() == ""


def test_close_is_idempotent():
    stream = io.StringIO()
    bar = Progress("x", 2, stream=stream)
    bar.update(2)
    bar.close()
    bar.close()
    assert stream.getvalue().count("\n") == 1


def test_a_terminal_redraws_in_place_at_most_ten_times_a_second(monkeypatch):
    import tqdm.std

    clock = [0.0]
    monkeypatch.setattr(tqdm.std, "time", lambda: clock[0])
    stream = Terminal()
    with Progress("live", 1000, "images", stream=stream) as bar:
        for _ in range(1000):
            clock[0] += 0.001  # 1000 updates over one second
            bar.update()
    out = stream.getvalue()
    assert out.endswith("\n") and out.count("\n") == 1
    draws = out.split("\r")[1:]
    assert 2 <= len(draws) <= 12  # the first draw, about 10 in the second, the final one
    assert re.fullmatch(r"live \[#{24}\] 1000/1000 images +\d+\.\ds\s*\n", draws[-1])

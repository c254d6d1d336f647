"""The README and the pages under docs/: every relative link resolves (file and #anchor), the README stays a short
front door that links every page, and it states the test command the CI runs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
DOCS = REPO / "docs"
PAGES = sorted(DOCS.glob("*.md"))
MAX_README_LINES = 250
TEST_COMMAND = "python3 -m venv .venv && . .venv/bin/activate && pip install -e '.[test]' && pytest"

LINK = re.compile(r"(?<!!)\[(?P<text>[^\]]*)\]\((?P<target>[^)\s]+)(?:\s+\"[^\"]*\")?\)")
FENCE = re.compile(r"^\s*(```|~~~)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
INLINE_CODE = re.compile(r"(`+)(.+?)\1")


def prose_lines(text: str) -> list[tuple[int, str]]:
    """(line number, line) of the lines outside fenced code blocks."""
    out, fence = [], None
    for number, line in enumerate(text.splitlines(), 1):
        m = FENCE.match(line)
        if m:
            if fence is None:
                fence = m.group(1)
            elif m.group(1) == fence:
                fence = None
            continue
        if fence is None:
            out.append((number, line))
    return out


def links(path: Path) -> list[tuple[int, str]]:
    """(line number, target) of every markdown link outside code (fenced blocks and inline code spans)."""
    found = []
    for number, line in prose_lines(path.read_text()):
        for m in LINK.finditer(INLINE_CODE.sub("", line)):
            found.append((number, m.group("target")))
    return found


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: markup dropped, lowercase, punctuation removed, spaces to '-'."""
    text = INLINE_CODE.sub(lambda m: m.group(2), heading)
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", text)  # a link's text stays, its target goes
    text = re.sub(r"<[^>]+>", "", text)  # inline HTML tags
    text = text.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)  # \w keeps letters, digits and '_', as GitHub does
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every heading anchor of a markdown file, with GitHub's -1, -2 suffixes for repeated headings."""
    seen: dict[str, int] = {}
    out = set()
    for _, line in prose_lines(path.read_text()):
        m = HEADING.match(line)
        if not m:
            continue
        base = slug(m.group(2))
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.add(base if n == 0 else f"{base}-{n}")
    return out


def broken_links(path: Path) -> list[str]:
    problems = []
    for number, target in links(path):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):  # http:, https:, mailto: ...
            continue
        file_part, _, anchor = target.partition("#")
        dest = (path.parent / file_part).resolve() if file_part else path
        where = f"{path.relative_to(REPO)}:{number}: {target}"
        if not dest.exists():
            problems.append(f"{where}: no file {dest}")
            continue
        if anchor:
            if dest.suffix != ".md" or dest.is_dir():
                problems.append(f"{where}: an anchor into a file that is not markdown")
            elif anchor not in anchors(dest):
                problems.append(f"{where}: no heading with anchor #{anchor} in {dest.relative_to(REPO)}")
    return problems


def test_there_are_docs_pages():
    assert PAGES, "docs/*.md: no pages"


@pytest.mark.parametrize("path", [README, *PAGES], ids=lambda p: str(p.relative_to(REPO)))
def test_relative_links_resolve(path):
    assert broken_links(path) == []


def test_readme_is_a_short_front_door():
    n = len(README.read_text().splitlines())
    assert n <= MAX_README_LINES, f"README.md has {n} lines; move reference material into docs/"


def test_readme_links_every_docs_page():
    linked = {(README.parent / t.partition("#")[0]).resolve() for _, t in links(README)}
    missing = [p.name for p in PAGES if p.resolve() not in linked]
    assert missing == [], f"README.md links no docs page {missing}"


def test_readme_states_the_test_command_in_a_fenced_block():
    text = README.read_text()
    blocks = re.findall(r"^```[^\n]*\n(.*?)^```", text, re.S | re.M)
    assert any(TEST_COMMAND in block.splitlines() for block in blocks)


def test_every_generated_block_is_in_the_docs_once():
    """The benchmark scripts rewrite the text between <!-- NAME:begin --> and <!-- NAME:end --> in the page given
    with --readme: each block must exist, closed, exactly once."""
    texts = {p: p.read_text() for p in [README, *PAGES]}
    for name, page in {"world": "studies.md", "replicates": "studies.md", "packaged": "studies.md",
                       "collections": "studies.md",
                       "durability": "benchmarks.md",
                       "reproducible": "operations.md"}.items():
        begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
        holders = [p.name for p, t in texts.items() if begin in t]
        assert holders == [page], (name, holders)
        text = texts[DOCS / page]
        assert text.count(begin) == 1 and text.count(end) == 1 and text.index(begin) < text.index(end)


def test_slug_follows_github():
    assert slug("Which expert for my new dataset? (`taskspace recommend`)") == \
        "which-expert-for-my-new-dataset-taskspace-recommend"
    assert slug("`stanford_cars`: Stanford Cars") == "stanford_cars-stanford-cars"
    assert slug("Reproducing the CUB+iNat study on a cluster") == "reproducing-the-cubinat-study-on-a-cluster"
    assert slug("The papers' figures and the report") == "the-papers-figures-and-the-report"


def test_a_broken_link_is_found(tmp_path, monkeypatch):
    monkeypatch.setitem(globals(), "REPO", tmp_path)
    (tmp_path / "a.md").write_text("# Title\n\n## A section\n\n[ok](#a-section) [also](a.md#title)\n")
    (tmp_path / "b.md").write_text("[gone](c.md) [no anchor](a.md#nothing)\n```\n[in code](d.md)\n```\n`[x](e.md)`\n")
    assert broken_links(tmp_path / "a.md") == []
    problems = broken_links(tmp_path / "b.md")
    assert len(problems) == 2 and "no file" in problems[0] and "#nothing" in problems[1]


EXAMPLE = re.compile(r"<!-- recommend-example:begin -->(.*?)<!-- recommend-example:end -->", re.S)


def test_the_recommend_example_is_the_demos_own_output():
    """README's and docs/recommend.md's example of `taskspace recommend` is one block, written by
    benchmarks/bench_recommend.py --example from a finished demo: it ranks the demo's experts, for the demo's task
    regenerated with the stated number of images."""
    import copy

    import yaml

    from taskspace.data import plan_tasks
    from taskspace.plan import RunPlan, effective_config

    blocks = [EXAMPLE.search(page.read_text()).group(1) for page in (README, DOCS / "recommend.md")]
    assert blocks[0] == blocks[1]
    block = blocks[0]
    recipe = re.search(r"its task (\S+) regenerated with (\d+) training images per class, (\d+) images", block)
    task, per_class, n = recipe.group(1), int(recipe.group(2)), int(recipe.group(3))
    config = effective_config(yaml.safe_load((REPO / "config.yaml").read_text()))
    plan = RunPlan(copy.deepcopy(config), "0")
    spec = {s.name: s for s in plan_tasks(config["data"])}[task]
    header = re.search(r"task 'my_dataset' \(path/to/my_dataset\): (\d+) images, (\d+) classes", block)
    assert (int(header.group(1)), int(header.group(2))) == (n, len(spec.classes)) and n == per_class * len(spec.classes)
    ranked = re.findall(r"^\s+(\d+)\s+(\S+)(?:\s+-?[\d.]+)+$", block, re.M)
    assert [int(r) for r, _ in ranked] == list(range(1, len(ranked) + 1)) and len(ranked) >= 3
    assert {e for _, e in ranked} <= set(plan.experts), "the example names experts the demo does not have"

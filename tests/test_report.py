"""`snakemake --report` on the tiny run: a self-contained HTML file with every figure, table and caption."""

from __future__ import annotations

import base64

import pytest

from conftest import REPO, snakemake

pytestmark = pytest.mark.workflow

FIGURES = ["selection_violin.png", "summary.png", "cost_frontier.png", "distance_heatmaps.png", "task_maps.png",
           "norm_vs_error.png", "taxonomy_curve.png"]
TABLES = ["summary.csv", "comparisons.csv"]


def test_report_embeds_every_figure_and_table_with_its_caption(tiny_run, tmp_path):
    report = tmp_path / "report.html"
    snakemake(tiny_run, "--report", str(report))
    html = report.read_text()
    folder = tiny_run / "results" / "plots" / "all"
    for name in FIGURES:
        # the figure itself, as a data URI of its bytes: the report needs no other file
        data = base64.b64encode((folder / name).read_bytes()).decode()
        assert data[:4000] in html, f"{name} is not embedded"
    for name in FIGURES + TABLES:
        assert f'"results/plots/all/{name}"' in html
    for caption in sorted((REPO / "report").glob("*.rst")):
        first_words = " ".join(caption.read_text().split()[:6])
        assert first_words in " ".join(html.replace("\\n", " ").split()), f"caption {caption.name} missing"
    assert "src=\"http" not in html and "href=\"results/" not in html  # self-contained: nothing fetched or linked

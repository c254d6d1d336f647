"""Build a finished run's `snakemake --report` and render it in a real headless browser (Debian's chromium).

    apt-get install -y chromium      # once
    python benchmarks/render_report.py RUN_DIR [--out report.html] [--screenshot report.png]

RUN_DIR is the run's working directory (the one holding results/ and config.yaml). Prints how long the report took
to build, the file sizes, whether the rendered page holds the report's own navigation (Workflow, Results) and how
many distinct colours the screenshot has (a blank or failed render has a handful).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--out", type=Path, help="the report file (default: RUN_DIR/report.html)")
    parser.add_argument("--screenshot", type=Path, help="the screenshot (default: next to the report, .png)")
    args = parser.parse_args()
    run = args.run.resolve()
    out = (args.out or run / "report.html").resolve()
    shot = (args.screenshot or out.with_suffix(".png")).resolve()
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        sys.exit("render_report: no chromium on PATH; apt-get install -y chromium")

    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(run),
                    "--configfile", str(run / "config.yaml"), "--report", str(out)],
                   check=True, capture_output=True, cwd=REPO)
    built = time.perf_counter() - start
    common = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=1400,1000",
              "--virtual-time-budget=10000"]
    dom = subprocess.run([*common, "--dump-dom", out.as_uri()], check=True, capture_output=True, text=True).stdout
    subprocess.run([*common, f"--screenshot={shot}", out.as_uri()], check=True, capture_output=True)

    from PIL import Image

    colours = len(Image.open(shot).convert("RGB").getcolors(maxcolors=1 << 20) or [])
    print(f"report {out} ({out.stat().st_size / 1e6:.1f} MB) built in {built:.1f} s")
    print(f"rendered by {browser}: DOM {len(dom) / 1e3:.0f} kB, navigation present: "
          f"{all(word in dom for word in ('Workflow', 'Results'))}")
    print(f"screenshot {shot} ({shot.stat().st_size / 1e3:.0f} kB, {colours} distinct colours)")


if __name__ == "__main__":
    main()

"""make bench writes its figures into the README between markers, so the README's numbers are measured ones."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("bench", ROOT / "scripts" / "bench.py")
assert spec is not None and spec.loader is not None
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)


def test_figures_replace_the_block_between_the_markers_only():
    readme = f"intro\n{bench.BEGIN}\nold figures\n{bench.END}\noutro\n"
    updated = bench.with_figures(readme, ["example  6.00 s", "tests  80 s"], "2026-12-02")
    assert updated.startswith("intro\n") and updated.endswith("\noutro\n")
    assert "old figures" not in updated
    assert "Measured by `make bench` (2026-12-02):" in updated
    assert "```\nexample  6.00 s\ntests  80 s\n```" in updated
    assert bench.with_figures(updated, ["x"], "d").count(bench.BEGIN) == 1


def test_a_readme_without_markers_is_left_alone():
    assert bench.with_figures("no markers here\n", ["x"], "d") == "no markers here\n"


def test_the_readme_has_the_markers():
    text = (ROOT / "README.md").read_text()
    assert text.count(bench.BEGIN) == 1 and text.count(bench.END) == 1

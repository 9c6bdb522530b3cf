"""The figures in the docs are the runs' figures: each table shown in
docs/results.md and the README is the generated file, verbatim, and the
full-scale tables are what the scripts make of the committed run files."""
import subprocess
import sys

import pytest

from conftest import ROOT, load_script

DOCS = ROOT / "docs"

compare = load_script("compare")


@pytest.mark.parametrize(
    "generated,page",
    [("results_table.md", "results.md"), ("results_full_table.md", "results.md"), ("learning_curves_full.md", "results.md"),
     ("errors_full_test.md", "results.md"), ("benchmark_annotate.md", "benchmark.md"),
     ("results_variants_table.md", "results.md"), ("adapt_demo.md", "results.md"),
     ("results_gpu_table.md", "results.md"), ("learning_curves_gpu.md", "results.md"),
     ("benchmark-gpu-strict.md", "benchmark.md"), ("profile-cpu.md", "benchmark.md"),
     ("profile-cpu-thincadam.md", "benchmark.md"), ("benchmark-cpu-fused-adam.md", "benchmark.md"),
     ("benchmark-cpu-mmap-threshold.md", "benchmark.md"), ("benchmark-cpu-partial-ckpt.md", "benchmark.md"),
     ("benchmark-cpu-tiny-shape.md", "benchmark.md"), ("profile-cpu-tiny-shape.md", "benchmark.md"),
     ("benchmark-cpu-tiny-shape-b1024.md", "benchmark.md"), ("benchmark-gpu-round4.md", "benchmark.md")],
)
def test_doc_pages_show_the_generated_tables(generated, page):
    assert (DOCS / generated).read_text() in (DOCS / page).read_text()


@pytest.mark.parametrize("generated", ["results_table.md", "results_full_table.md", "results_variants_table.md"])
def test_readme_shows_the_generated_tables(generated):
    """The main table of each (the README leaves out the differences)."""
    assert (DOCS / generated).read_text().split("\n\n")[0] in (ROOT / "README.md").read_text()


@pytest.mark.parametrize("runs,suffix", [("full", "full"), ("gpu-smollm2", "gpu")])
def test_full_scale_tables_come_from_the_committed_run_files(tmp_path, runs, suffix):
    """Rebuilt from results/full (CPU) or results/gpu-smollm2, the tables are the committed ones."""
    runs = ROOT / "results" / runs
    subprocess.run([sys.executable, str(ROOT / "scripts" / "compare.py"), str(runs),
                    str(tmp_path / "table.md"), str(tmp_path / "table.png")], check=True, capture_output=True)
    subprocess.run([sys.executable, str(ROOT / "scripts" / "learning_curves.py"), str(runs),
                    str(tmp_path / "curves.png"), str(tmp_path / "curves.md")], check=True, capture_output=True)
    assert (tmp_path / "table.md").read_text() == (DOCS / f"results_{suffix}_table.md").read_text()
    assert (tmp_path / "curves.md").read_text() == (DOCS / f"learning_curves_{suffix}.md").read_text()


def run_record(test_f1=0.9, dev_f1=0.95, started="2026-11-26T09:00:00+0000"):
    """One run as compare.load_runs reads it from test.json, run.json and train_log.jsonl."""
    return {"test": {"ents_f": test_f1, "ents_per_type": {"PER": {"f": test_f1}}, "words_per_second": 300,
                     "peak_rss_mb": 2000, "parameters_total": 10, "parameters_trainable": 10},
            "train": {"dev_scores": {"ents_f": dev_f1}, "started": started, "train_wall_s": 100.0,
                      "peak_rss_mb": 6000},
            "log": [{"step": 0, "score": 0.0}, {"step": 10, "score": dev_f1}]}


def test_a_difference_that_rounds_to_zero_has_no_minus_sign():
    groups = {"bidirectional": [run_record(0.902, 0.9486)], "tuned": [run_record(0.905, 0.9483)]}
    rows = compare.differences(groups, "bidirectional").strip().splitlines()
    assert rows[-1] == "| tuned | +0.3 | +0.0 | 1.00× |"


def test_a_group_of_seeds_run_on_different_days_shows_each_date():
    groups = {"bidirectional": [run_record(started="2026-11-28T02:12:52+0000"), run_record(started="2026-11-26T09:00:00+0000")],
              "causal": [run_record(started="2026-11-26T10:00:00+0000"), run_record(started="2026-11-26T12:00:00+0000")]}
    head, _, *rows = [[cell.strip() for cell in row.strip("|").split("|")] for row in compare.table(groups).splitlines()]
    dates = {row[0]: row[head.index("date")] for row in rows}
    assert dates == {"bidirectional": "2026-11-26, 2026-11-28", "causal": "2026-11-26"}


def test_benchmark_page_shows_the_strict_cpu_run():
    """docs/benchmark.md copies the tables of the run it describes (its first line,
    the run's settings, is written out as the command there)."""
    tables = (DOCS / "benchmark-cpu-strict.md").read_text().split("\n\n", 1)[1]
    assert tables in (DOCS / "benchmark.md").read_text()

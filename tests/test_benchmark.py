"""The benchmark runs end to end (tiny model, few docs) and reports ratios."""
import json
import subprocess
import sys

import pytest

from spacy_llama_ner.conll import conll_to_docbin
from conftest import ROOT


@pytest.mark.timeout(600)  # ten variants, each its own process (torch, spaCy and a model to load)
def test_benchmark_reports_words_per_second_memory_and_ratios(tiny_llama, tmp_path):
    conll = tmp_path / "dev.txt"
    conll.write_text("Peter B-PER\nSmith I-PER\nflew O\nto O\nLondon B-LOC\n\nthe O\nbank O\nwon O\n\n" * 4)
    conll_to_docbin(conll).to_disk(tmp_path / "dev.spacy")
    variants = ("strict-forward,limit-forward,ours-causal-infer,ours-bidirectional-infer,"
                "strict-train,limit-train,ours-bidirectional-train,ours-ckpt-train,ours-freeze-train,seed-train")
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "benchmark.py"), "--model", str(tiny_llama),
         "--data", str(tmp_path / "dev.spacy"), "--n-docs", "8", "--batch-docs", "4", "--repeats", "1",
         "--variants", variants, "--out", str(tmp_path / "bench")],
        check=True, capture_output=True, text=True,
    )
    report = json.loads((tmp_path / "bench.json").read_text())
    assert [r["variant"] for r in report["results"]] == variants.split(",")
    assert all(r["words"] == 32 and r["words_per_s"] > 0 and r["peak_rss_mb"] > 0 for r in report["results"])
    assert set(report["ratios"]) == {
        "ours-causal-infer / strict-forward", "ours-bidirectional-infer / strict-forward",
        "ours-bidirectional-train / strict-train",
        "ours-causal-infer / limit-forward", "ours-bidirectional-infer / limit-forward",
        "ours-bidirectional-infer / ours-causal-infer", "ours-bidirectional-train / limit-train",
        "ours-bidirectional-train / seed-train",
        "ours-ckpt-train / ours-bidirectional-train", "ours-freeze-train / ours-bidirectional-train",
    }
    assert "| ours-bidirectional-infer / limit-forward |" in (tmp_path / "bench.md").read_text()

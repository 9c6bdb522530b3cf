"""The benchmark and the step profile run end to end (tiny model, few docs) and
report ratios and phases."""
import json
import os
import subprocess
import sys

import pytest

from spacy_llama_ner.conll import conll_to_docbin
from conftest import ROOT


def write_dev(tmp_path):
    conll = tmp_path / "dev.txt"
    conll.write_text("Peter B-PER\nSmith I-PER\nflew O\nto O\nLondon B-LOC\n\nthe O\nbank O\nwon O\n\n" * 4)
    conll_to_docbin(conll).to_disk(tmp_path / "dev.spacy")
    return tmp_path / "dev.spacy"


@pytest.mark.timeout(600)  # thirteen variants, each its own process (torch, spaCy and a model to load)
def test_benchmark_reports_words_per_second_memory_and_ratios(tiny_llama, tmp_path):
    write_dev(tmp_path)
    variants = ("strict-forward,limit-forward,ours-causal-infer,ours-bidirectional-infer,strict-train,limit-train,"
                "ours-bidirectional-train,ours-ckpt-train,ours-ckpt2-train,ours-ckpt1-freeze-train,ours-freeze-train,"
                "ours-thincadam-train,seed-train")
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
        "ours-ckpt-train / ours-bidirectional-train", "ours-ckpt2-train / ours-bidirectional-train",
        "ours-ckpt1-freeze-train / ours-bidirectional-train",
        "ours-freeze-train / ours-bidirectional-train", "ours-bidirectional-train / ours-thincadam-train",
    }
    assert "| ours-bidirectional-infer / limit-forward |" in (tmp_path / "bench.md").read_text()


def test_benchmark_compares_layerwise_with_causal(tiny_llama, tmp_path):
    write_dev(tmp_path)
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "benchmark.py"), "--model", str(tiny_llama),
         "--data", str(tmp_path / "dev.spacy"), "--n-docs", "8", "--batch-docs", "4", "--repeats", "1",
         "--variants", "ours-causal-infer,ours-layerwise1-infer", "--out", str(tmp_path / "bench")],
        check=True, capture_output=True, text=True,
    )
    report = json.loads((tmp_path / "bench.json").read_text())
    assert [r["variant"] for r in report["results"]] == ["ours-causal-infer", "ours-layerwise1-infer"]
    assert set(report["ratios"]) == {"ours-layerwise1-infer / ours-causal-infer"}


def test_benchmark_names_an_unknown_variant_before_running_any(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "benchmark.py"), "--model", str(tmp_path / "never-built"),
         "--variants", "strict-train,ours-bidirectonal-train", "--out", str(tmp_path / "bench")],
        capture_output=True, text=True,
    )
    assert proc.returncode == 2
    assert "unknown 'ours-bidirectonal-train'" in proc.stderr and "ours-ckpt8-freeze-train" in proc.stderr
    assert "running" not in proc.stdout and not (tmp_path / "bench.json").exists()


def test_profile_splits_a_training_step_into_its_phases(tiny_llama, tmp_path):
    # tiny-shape: a 2-layer, 64-wide backbone built (into TMPDIR) with the given tokenizer
    shapes = tmp_path / "shapes"
    shapes.mkdir()
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "profile_step.py"), "--model", "tiny-shape", "--tokenizer-from", str(tiny_llama),
         "--data", str(write_dev(tmp_path)), "--n-docs", "8", "--batch-docs", "4", "--out", str(tmp_path / "profile")],
        check=True, capture_output=True, text=True, env={**os.environ, "TMPDIR": str(shapes)},
    )
    [built] = shapes.glob("tiny-shape-*")
    config = json.loads((built / "config.json").read_text())
    assert (config["num_hidden_layers"], config["hidden_size"]) == (2, 64)
    assert (built / "tokenizer.json").read_text() == (tiny_llama / "tokenizer.json").read_text()
    profile = json.loads((tmp_path / "profile.json").read_text())
    phases = profile["seconds_per_batch"]
    assert list(phases) == ["word pieces + alignment", "backbone forward", "transformer component, the rest",
                            "optimizer: transformer", "NER (parser, listener)", "backbone backward",
                            "optimizer: NER", "spaCy, the rest"]
    assert profile["batches"] == 2 and profile["words"] == 32
    assert all(seconds > 0 for seconds in phases.values())  # each phase was reached and timed
    # the phases add up to the step as timed around it: nested timers are taken out of
    # the outer ones, not counted twice (the difference is the timers' own bookkeeping)
    assert sum(phases.values()) == pytest.approx(profile["step_s"], rel=0.02)
    table = (tmp_path / "profile.md").read_text()
    assert "| backbone backward |" in table and "| **the step, timed by phase** |" in table


def test_profile_takes_a_variant_and_builds_smollm2_shape_from_the_config(tiny_llama, tmp_path):
    # smollm2-shape: the model of --tokenizer-from's own config.json with random weights
    shapes = tmp_path / "shapes"
    shapes.mkdir()
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "profile_step.py"), "--model", "smollm2-shape", "--tokenizer-from",
         str(tiny_llama), "--data", str(write_dev(tmp_path)), "--n-docs", "4", "--batch-docs", "4",
         "--variant", "ours-layerwise1-train", "--out", str(tmp_path / "profile")],
        check=True, capture_output=True, text=True, env={**os.environ, "TMPDIR": str(shapes)},
    )
    [built] = shapes.glob("smollm2-shape-*")
    built_config, given = (json.loads((d / "config.json").read_text()) for d in (built, tiny_llama))
    keys = ["num_hidden_layers", "hidden_size", "num_attention_heads", "num_key_value_heads", "vocab_size"]
    assert [built_config[k] for k in keys] == [given[k] for k in keys]
    profile = json.loads((tmp_path / "profile.json").read_text())
    assert profile["args"]["variant"] == "ours-layerwise1-train"
    assert (tmp_path / "profile.md").read_text().startswith("`ours-layerwise1-train`, model ")


def test_profile_names_a_variant_it_cannot_profile(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "profile_step.py"), "--model", str(tmp_path / "never-built"),
         "--variant", "ours-bidirectional-infer", "--out", str(tmp_path / "profile")],
        capture_output=True, text=True,
    )
    assert proc.returncode == 2
    assert "'ours-bidirectional-infer' is not one of" in proc.stderr and "ours-layerwise15-train" in proc.stderr

"""The causal-vs-bidirectional study (experiments/causal_vs_bidirectional): its demo
workflow end to end on a tiny random LLaMA and a tiny budget, in a copy of the study
folder; and its committed summary of runs, which must rebuild the committed tables."""
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import srsly

from conftest import ROOT

STUDY = ROOT / "experiments" / "causal_vs_bidirectional"
# the groups report-levers draws, as project.yml names them
LEVERS = srsly.read_yaml(STUDY / "project.yml")["vars"]["levers_groups"]
# entity types other than CoNLL-2003's: nothing in the study may assume them
WORDS = "the patient took Aspirin for a headache and Ibuprofen for fever after the flu".split()
# (committed table, the report command's arguments that wrote it, less its path)
TABLES = [("docs/results_full_table.md", ["full", "--table"]), ("docs/results_gpu_table.md", ["gpu", "--table"]),
          ("docs/learning_curves_levers.md", ["full", "--groups", LEVERS, "--curves-table"])]


def write_conll(path, n_sentences, seed):
    import random

    rng = random.Random(seed)
    lines = ["-DOCSTART- -X- -X- O", ""]
    for _ in range(n_sentences):
        for word in rng.sample(WORDS, 8):
            tag = "B-DRUG" if word in ("Aspirin", "Ibuprofen") else "B-DISEASE" if word in ("headache", "fever", "flu") else "O"
            lines.append(f"{word} NN O {tag}")
        lines.append("")
    path.write_text("\n".join(lines) + "\n")


def python(*args, cwd):
    result = subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True, cwd=cwd,
                            env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert result.returncode == 0, (args, result.stdout[-3000:], result.stderr[-3000:])
    return result


def test_committed_runs_rebuild_the_committed_tables(tmp_path):
    """results/runs.jsonl parses, every record has what a table needs, and the report
    command rebuilds docs/results_full_table.md, docs/results_gpu_table.md and the levers'
    learning curves (docs/learning_curves_levers.md) from it, byte for byte."""
    records = [json.loads(line) for line in (STUDY / "results" / "runs.jsonl").read_text().splitlines()]
    assert len({(r["setting"], r["name"]) for r in records}) == len(records)
    for r in records:
        assert r["setting"] in ("demo", "full", "gpu", "gpu-1b") and r["group"] == re.sub(r"-s\d+$", "", r["name"])
        assert 0 < r["dev"]["ents_f"] <= 1 and 0 < r.get("test", {"ents_f": 1})["ents_f"] <= 1
        assert r["dev_curve"][-1][0] == r["steps"] and r["config"].endswith(".cfg") and r["overrides"]
    for table, args in TABLES:
        out = tmp_path / Path(table).name
        python("scripts/report.py", *args, out, cwd=STUDY)
        assert out.read_text() == (STUDY / table).read_text(), f"{table} is not what runs.jsonl gives"
    readme = (STUDY / "README.md").read_text()
    for table, _ in TABLES:  # the README quotes the tables as they are
        assert (STUDY / table).read_text().split("\n\n")[0] in readme, f"README.md's copy of {table} is out of date"


@pytest.mark.timeout(300)
def test_demo_workflow_trains_scores_records_and_reports(tiny_llama, tmp_path):
    """The `demo` workflow on a tiny model and budget, in a copy of the study with the
    repository's configs and scripts where it expects them (../../): every workflow's
    commands are resolved (a dry run), then the demo's key commands run as the workflow runs them:
    fetch-data, convert-demo, train-causal and train-bidirectional (two seeds each),
    evaluate.py on those four (as evaluate-demo does), report.py (as report-demo does)."""
    from weasel.cli.run import project_run
    from weasel.util import load_project_config

    repo = tmp_path / "repo"
    for name in ("configs", "scripts"):
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).symlink_to(ROOT / name)
    study = repo / "experiments" / "causal_vs_bidirectional"
    shutil.copytree(STUDY, study, ignore=shutil.ignore_patterns("corpus", "training", "metrics", "project.lock", "__pycache__"))
    committed = (study / "results" / "runs.jsonl").read_text().splitlines()
    data = tmp_path / "data"
    data.mkdir()
    for split, n, seed in (("train", 24, 0), ("dev", 6, 1), ("test", 6, 2)):
        write_conll(data / f"{split}.txt", n, seed)
    variables = {"model": str(tiny_llama), "data_dir": str(data), "layerwise_from": "2", "demo_sentences": "20",
                 "demo_steps": "2", "demo_batch_words": "60"}
    overrides = {f"vars.{k}": v for k, v in variables.items()}
    config = load_project_config(study, overrides=overrides)
    assert config["workflows"]["demo"] == ["fetch-model", "fetch-data", "convert-demo", "train-causal", "train-bidirectional",
                                           "train-layerwise", "train-cnn", "evaluate-demo", "report-demo"]
    scripts = {c["name"]: c["script"] for c in config["commands"]}
    os.environ["HF_HUB_OFFLINE"] = "1"
    cwd = os.getcwd()
    try:
        for workflow in ("demo", "variants", "full", "full-adapted", "benchmark"):  # every command resolves
            project_run(study, workflow, overrides=overrides, dry=True)
        for command in ("fetch-data", "convert-demo", "train-causal", "train-bidirectional"):
            project_run(study, command, overrides=overrides, capture=True)
    finally:
        os.chdir(cwd)
    evaluate, = scripts["evaluate-demo"]
    assert evaluate.startswith("python scripts/evaluate.py corpus/demo/test.spacy ") and evaluate.endswith(" --gpu-id -1 --record demo")
    modes = [f"training/demo/{mode}-s{seed}" for mode in ("causal", "bidirectional") for seed in (0, 1)]
    assert all(f" {mode} " in evaluate for mode in modes)
    python("scripts/evaluate.py", "corpus/demo/test.spacy", *modes, "--gpu-id", "-1", "--record", "demo", cwd=study)
    report, = scripts["report-demo"]
    assert report.startswith("python scripts/report.py demo --table docs/results_demo_table.md --figure docs/results_demo.png --groups ")
    python(*report.split()[1:-1], "bidirectional,causal", cwd=study)

    lines = (study / "results" / "runs.jsonl").read_text().splitlines()
    assert lines[: len(committed)] == committed  # the recorded runs stay as they were
    demo = {r["name"]: r for r in map(json.loads, lines[len(committed):])}
    assert sorted(demo) == ["bidirectional-s0", "bidirectional-s1", "causal-s0", "causal-s1"]
    for name, run in demo.items():
        assert run["setting"] == "demo" and run["seed"] == int(name[-1])
        assert run["steps"] == 2 and [step for step, _ in run["dev_curve"]][-1] == 2
        assert run["overrides"]["training.max_steps"] == 2 and run["train_s"] > 0 and run["train_peak_rss_mb"] > 0
        assert run["command"].startswith("python scripts/train.py ") and "--record demo" in run["command"]
        assert 0 <= run["test"]["ents_f"] <= 1 and set(run["test"]["per_type"]) <= {"DRUG", "DISEASE"}
        assert run["test"]["words_per_s"] > 0 and run["test"]["params_total"] > 0
    assert demo["causal-s0"]["overrides"]["components.transformer.model.attention"] == "causal"
    assert demo["causal-s0"]["config"] == demo["bidirectional-s1"]["config"] == "../../configs/ner_bidirectional.cfg"
    assert demo["causal-s1"]["overrides"]["training.optimizer.learn_rate.warmup_steps"] == 10  # the demo's schedule

    table, against_causal, against_bidirectional = (study / "docs" / "results_demo_table.md").read_text().split("\n\n")
    assert [row.split(" | ")[:2] for row in table.splitlines()[2:]] == [["| bidirectional", "2"], ["| causal", "2"]]
    assert against_causal.splitlines()[2].startswith("| bidirectional | ")
    assert (study / "docs" / "results_demo.png").stat().st_size > 10_000
    assert (study / "docs" / "results_demo.png").read_bytes() != (STUDY / "docs" / "results_demo.png").read_bytes()

    # a run trained outside the workflow goes into the summary from its directory
    python("scripts/runs.py", "record", "training/demo/bidirectional-s1", "--setting", "full",
           "--name", "bidirectional-smoke-s1", "--note", "a check", cwd=study)
    added = json.loads((study / "results" / "runs.jsonl").read_text().splitlines()[-1])
    assert (added["setting"], added["group"], added["note"]) == ("full", "bidirectional-smoke", "a check")
    assert added["test"] == demo["bidirectional-s1"]["test"]
    wrong = subprocess.run([sys.executable, "scripts/report.py", "demo", "--table", "t.md", "--groups", "causal,echo"],
                           capture_output=True, text=True, cwd=study)
    assert wrong.returncode != 0 and "--groups: no runs named echo-sN" in wrong.stderr

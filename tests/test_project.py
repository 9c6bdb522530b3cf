"""The project's `train` and `evaluate` commands, run as a user runs them
(`spacy project run`), on a tiny model and a tiny CoNLL dataset with entity
types other than CoNLL-2003's, in a copy of the project."""
import json
import os
import shutil
import subprocess
import sys

import pytest
import spacy

from conftest import ROOT

WORDS = "the patient took Aspirin for a headache and Ibuprofen for fever after the flu".split()


def write_conll(path, n_sentences, seed):
    """IOB2 tags, tab-separated, no -DOCSTART-, whitespace-only separator lines."""
    import random

    rng = random.Random(seed)
    lines = []
    for _ in range(n_sentences):
        for word in rng.sample(WORDS, 8):
            tag = "B-DRUG" if word in ("Aspirin", "Ibuprofen") else "B-DISEASE" if word in ("headache", "fever", "flu") else "O"
            lines.append(f"{word}\tNN\t{tag}")
        lines.append("  ")
    path.write_text("\n".join(lines) + "\n")


@pytest.fixture
def project(tmp_path):
    """A copy of the project (project.yml, configs, scripts) and a data directory."""
    for name in ("configs", "scripts"):
        shutil.copytree(ROOT / name, tmp_path / "project" / name)
    shutil.copy(ROOT / "project.yml", tmp_path / "project" / "project.yml")
    data = tmp_path / "data"
    data.mkdir()
    for split, n, seed in (("train", 24, 0), ("dev", 8, 1), ("test", 8, 2)):
        write_conll(data / f"{split}.txt", n, seed)
    return tmp_path / "project", data


def project_run(command, project_dir, **variables):
    args = [sys.executable, "-m", "spacy", "project", "run", command, str(project_dir)]
    args += [f"--vars.{key}={value}" for key, value in variables.items()]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(args, capture_output=True, text=True, env=env, cwd=project_dir)
    assert result.returncode == 0, (result.stdout[-3000:], result.stderr[-3000:])
    return result


@pytest.mark.parametrize("attention,from_layer", [("causal", 0), ("bidirectional", 2)])
def test_train_then_evaluate_on_other_entity_types(project, tiny_llama, attention, from_layer):
    project_dir, data = project
    project_run(
        "train", project_dir, model=tiny_llama, data_dir=data, attention=attention,
        bidirectional_from_layer=from_layer, max_steps=6, seed=3,
    )
    training = project_dir / "training"
    log = [json.loads(line) for line in (training / "train_log.jsonl").read_text().splitlines()]
    assert [entry["step"] for entry in log] == [0, 6]  # the last step is evaluated
    run = json.loads((training / "run.json").read_text())
    assert run["seed"] == 3 and run["config"] == "configs/ner_bidirectional.cfg"

    nlp = spacy.load(training / "model-best")
    assert set(nlp.get_pipe("ner").labels) == {"DRUG", "DISEASE"}
    model_config = nlp.config["components"]["transformer"]["model"]
    assert (model_config["attention"], model_config["bidirectional_from_layer"]) == (attention, from_layer)
    assert nlp.config["paths"]["model"] == str(tiny_llama)

    project_run("evaluate", project_dir, model=tiny_llama, data_dir=data)
    metrics = json.loads((project_dir / "metrics" / "test.json").read_text())
    assert 0.0 <= metrics["ents_f"] <= 1.0
    assert set(metrics["ents_per_type"] or {}) <= {"DRUG", "DISEASE"}


def test_train_rejects_a_bad_attention_value(project, tiny_llama):
    project_dir, data = project
    args = [sys.executable, "-m", "spacy", "project", "run", "train", str(project_dir),
            f"--vars.model={tiny_llama}", f"--vars.data_dir={data}", "--vars.attention=both", "--vars.max_steps=2"]
    result = subprocess.run(args, capture_output=True, text=True, cwd=project_dir, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert result.returncode != 0
    assert "attention: got 'both'; allowed values: ['causal', 'bidirectional']" in result.stdout + result.stderr


def test_train_names_a_missing_data_file(project, tiny_llama, tmp_path):
    project_dir, _ = project
    empty = tmp_path / "empty"
    empty.mkdir()
    args = [sys.executable, "-m", "spacy", "project", "run", "train", str(project_dir),
            f"--vars.model={tiny_llama}", f"--vars.data_dir={empty}", "--vars.max_steps=2"]
    result = subprocess.run(args, capture_output=True, text=True, cwd=project_dir)
    assert result.returncode != 0
    assert f"Missing dependency specified by command 'train':\n{empty / 'train.txt'}" in result.stdout


def test_every_dep_and_output_is_one_path():
    """weasel's substitution joins a dep that is only a ${var} with a following one
    that starts with ${ ("a.cfg, data/train.txt"); such a command could never run."""
    from weasel.util import load_project_config

    config = load_project_config(ROOT)
    paths = [(c["name"], p) for c in config["commands"] for key in ("deps", "outputs", "outputs_no_cache") for p in c.get(key, [])]
    assert paths and [(name, p) for name, p in paths if ", " in p] == []


def test_full_workflow_records_runs_and_reports_them(project, tiny_llama):
    """Two `full-*` runs (a few steps each), then `full-report`: the table, the
    figure and the learning curves come from the recorded result files alone."""
    project_dir, data = project
    common = {"model": tiny_llama, "data_dir": data, "full_steps": 4}
    project_run("convert", project_dir, **common)
    project_run("full-bidirectional", project_dir, **common)
    project_run("full-causal", project_dir, **common)
    results = project_dir / "results" / "full"
    assert sorted(p.name for p in results.iterdir()) == ["bidirectional-s0", "causal-s0"]
    for run in results.iterdir():
        assert sorted(p.name for p in run.iterdir()) == ["run.json", "test.json", "train_log.jsonl"]
    # the model and training outputs stay out of the recorded results
    shutil.rmtree(project_dir / "training")
    project_run("full-report", project_dir, **common)
    docs = project_dir / "docs"
    table = (docs / "results_full_table.md").read_text().splitlines()
    assert [row.split(" | ")[0] for row in table[2:]] == ["| bidirectional", "| causal"]
    assert all(" | 4/4 | " in row or " | 0/4 | " in row for row in table[2:])  # best/last step
    curves = (docs / "learning_curves_full.md").read_text().splitlines()
    assert curves[0] == "| step | bidirectional-s0 | causal-s0 |"
    assert [row.split(" | ")[0] for row in curves[2:]] == ["| 0", "| 4"]
    assert (docs / "results_full.png").stat().st_size > 10_000
    assert (docs / "learning_curves_full.png").stat().st_size > 10_000

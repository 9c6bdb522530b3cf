"""The user project's commands (project.yml), run as a user runs them
(`spacy project run`), on a tiny model and a tiny CoNLL dataset with entity
types other than CoNLL-2003's, in a copy of the project."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy
import pytest
import spacy
import torch
from spacy.tokens import DocBin

from conftest import ROOT, make_tiny_model

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
    for name in ("configs", "scripts", "examples"):
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


def short_config(project_dir: Path, max_length: int = 512) -> str:
    """The CPU config with a budget of 6 steps, evaluated every 3: the budget
    lives in the config (a user's own config is passed the same way)."""
    config = spacy.util.load_config(project_dir / "configs" / "ner_bidirectional.cfg")
    config["components"]["transformer"]["model"]["max_length"] = max_length
    config["training"]["max_steps"] = 6
    config["training"]["eval_frequency"] = 3
    config.to_disk(project_dir / "configs" / "short.cfg")
    return "configs/short.cfg"


@pytest.mark.parametrize("attention,names", [
    ("causal", None),
    ("bidirectional", ("wnut17train.conll", "emerging.dev.conll", "emerging.test.annotated")),  # WNUT-17's names
])
def test_convert_train_evaluate_package_annotate(project, tiny_llama, attention, names):
    project_dir, data = project
    files = {}
    if names:
        for split, name in zip(("train", "dev", "test"), names):
            (data / f"{split}.txt").rename(data / name)
            files[f"{split}_file"] = name
    common = dict(model=tiny_llama, data_dir=data, **files)
    project_run("convert", project_dir, **common)
    # the causal run's spans (8 words) are longer than 8 word pieces: its log counts them
    max_length = 8 if attention == "causal" else 512
    project_run("train", project_dir, attention=attention, seed=3, config=short_config(project_dir, max_length), **common)
    training = project_dir / "training"
    log = [json.loads(line) for line in (training / "train_log.jsonl").read_text().splitlines()]
    assert [entry["step"] for entry in log] == [0, 3, 6]
    assert set(log[-1]["scores"]) >= {"ents_f", "ents_p", "ents_r"} and set(log[-1]["losses"]) == {"transformer", "ner"}
    cut = [entry["truncated_spans"] for entry in log]
    if attention == "causal":  # spaCy evaluates after steps 0, 3, 6: updates and dev passes in between
        assert 0 < cut[0]["training"] < cut[1]["training"] < cut[2]["training"]
        assert 0 < cut[0]["inference"] < cut[1]["inference"] < cut[2]["inference"]
    else:
        assert cut == [{"training": 0, "inference": 0}] * 3

    nlp = spacy.load(training / "model-best")
    assert set(nlp.get_pipe("ner").labels) == {"DRUG", "DISEASE"}
    assert nlp.config["components"]["transformer"]["model"]["attention"] == attention
    assert nlp.config["paths"]["model"] == str(tiny_llama)
    assert nlp.config["system"]["seed"] == 3
    if attention == "causal":
        return  # evaluate, annotate and package do not depend on the attention: run once, below

    project_run("evaluate", project_dir, **common)
    metrics = json.loads((project_dir / "metrics" / "test.json").read_text())
    assert 0.0 <= metrics["ents_f"] <= 1.0
    assert set(metrics["ents_per_type"] or {}) <= {"DRUG", "DISEASE"}

    texts = data / "texts.txt"
    texts.write_text("the patient took Aspirin for a headache\n\nIbuprofen for fever\n")
    output = project_dir / "metrics" / "annotated.jsonl"
    project_run("annotate", project_dir, annotate_input=texts, annotate_output=output, **common)
    rows = [json.loads(line) for line in output.read_text().splitlines()]
    assert [row["text"] for row in rows] == ["the patient took Aspirin for a headache", "", "Ibuprofen for fever"]
    expected = [[(e.start_char, e.end_char, e.label_) for e in doc.ents] for doc in nlp.pipe(row["text"] for row in rows)]
    assert [[(e["start"], e["end"], e["label"]) for e in row["entities"]] for row in rows] == expected

    project_run("package", project_dir, **common)
    package = project_dir / "packages" / "en_llama_ner-0.1.0"
    meta = json.loads((package / "meta.json").read_text())
    assert any(req.startswith("spacy-llama-ner") for req in meta["requirements"]), meta["requirements"]
    assert any(req.startswith("spacy-transformers") for req in meta["requirements"]), meta["requirements"]
    assert list((package / "dist").glob("en_llama_ner-0.1.0.tar.gz"))
    packaged = spacy.load(package / "en_llama_ner" / "en_llama_ner-0.1.0")
    text = "the patient took Aspirin for a headache"
    assert [(e.text, e.label_) for e in packaged(text).ents] == [(e.text, e.label_) for e in nlp(text).ents]


def test_train_rejects_a_bad_attention_value(project, tiny_llama):
    project_dir, data = project
    from spacy_llama_ner.conll import conll_to_docbin

    (project_dir / "corpus").mkdir()
    for split in ("train", "dev"):  # what convert writes (the test above runs convert itself)
        conll_to_docbin(data / f"{split}.txt").to_disk(project_dir / "corpus" / f"{split}.spacy")
    args = [sys.executable, "-m", "spacy", "project", "run", "train", str(project_dir),
            f"--vars.model={tiny_llama}", "--vars.attention=both", f"--vars.config={short_config(project_dir)}"]
    result = subprocess.run(args, capture_output=True, text=True, cwd=project_dir, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert result.returncode != 0
    assert "attention: got 'both'; allowed values: ['causal', 'bidirectional', 'echo']" in result.stdout + result.stderr


def test_convert_names_a_missing_data_file_or_folder(project, tmp_path):
    project_dir, _ = project
    empty = tmp_path / "empty"
    empty.mkdir()
    args = [sys.executable, "-m", "spacy", "project", "run", "convert", str(project_dir)]
    result = subprocess.run(args + [f"--vars.data_dir={empty}"], capture_output=True, text=True, cwd=project_dir)
    assert result.returncode != 0
    assert f"CoNLL file not found: {empty / 'train.txt'}" in " ".join(result.stdout.split())
    missing = tmp_path / "missing"
    result = subprocess.run(args + [f"--vars.data_dir={missing}"], capture_output=True, text=True, cwd=project_dir)
    assert result.returncode != 0
    assert f"Missing dependency specified by command 'convert':\n{missing}/" in result.stdout


def test_fetch_data_checks_the_named_files_and_never_downloads_over_some_of_them(project):
    project_dir, data = project
    (data / "dev.txt").rename(data / "valid.txt")
    check = [sys.executable, "scripts/prepare_data.py", str(data), "--url", "http://127.0.0.1:9/none.zip"]
    result = subprocess.run(check, capture_output=True, text=True, cwd=project_dir)
    assert result.returncode == 1 and "lacks dev.txt (the others are there" in " ".join(result.stdout.split())
    assert sorted(p.name for p in data.iterdir()) == ["test.txt", "train.txt", "valid.txt"]
    result = subprocess.run(check + ["--files", "train.txt", "valid.txt", "test.txt"], capture_output=True, text=True,
                            cwd=project_dir)
    assert result.returncode == 0 and "your own data (not CoNLL-2003)" in result.stdout


def test_every_dep_and_output_is_one_path():
    """weasel's substitution joins a dep that ends in a ${var} with a following one
    that starts with ${ ("a.cfg, data/train.txt"); such a command could never run."""
    from weasel.util import load_project_config

    config = load_project_config(ROOT)
    paths = [(c["name"], p) for c in config["commands"] for key in ("deps", "outputs", "outputs_no_cache") for p in c.get(key, [])]
    assert paths and [(name, p) for name, p in paths if ", " in p] == []


def test_beam_config_trains_and_calibrate_gives_calibrated_scores(project, tiny_llama):
    """The two steps of docs/confidence.md as project commands: train with
    configs/ner_beam.cfg, then calibrate on dev; model-calibrated reads its scores."""
    project_dir, data = project
    config = spacy.util.load_config(project_dir / "configs" / "ner_beam.cfg")
    config["training"]["max_steps"] = 24
    config["training"]["eval_frequency"] = 12
    config["training"]["optimizer"]["learn_rate"] = {"@schedules": "warmup_linear.v1", "warmup_steps": 2,
                                                     "total_steps": 24, "initial_rate": 0.001}
    config.to_disk(project_dir / "configs" / "short_beam.cfg")
    common = dict(model=tiny_llama, data_dir=data)
    project_run("convert", project_dir, **common)
    project_run("train", project_dir, config="configs/short_beam.cfg", seed=3, **common)
    result = project_run("calibrate", project_dir, **common)
    assert "Calibrator (platt) fitted on" in " ".join(result.stdout.split())
    nlp = spacy.load(project_dir / "training" / "model-calibrated")
    calibrator = nlp.get_pipe("ner").calibrator
    assert calibrator is not None and (calibrator.info["dev"], calibrator.info["train"]) == ("corpus/dev.spacy", "corpus/train.spacy")
    docs = list(nlp.pipe(["the patient took Aspirin for a headache", "Ibuprofen for fever after the flu"]))
    ents = [e for doc in docs for e in doc.ents]
    assert ents and all(e._.score == pytest.approx(float(calibrator.apply([e._.raw_score], [(e.text, e.label_)])[0])) for e in ents)

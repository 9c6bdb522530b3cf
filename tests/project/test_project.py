"""The project's `train` and `evaluate` commands, run as a user runs them
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


@pytest.mark.parametrize("attention,from_layer,names", [
    ("causal", 0, None),
    ("bidirectional", 2, ("wnut17train.conll", "emerging.dev.conll", "emerging.test.annotated")),  # WNUT-17's names
])
def test_train_then_evaluate_on_other_entity_types(project, tiny_llama, attention, from_layer, names):
    project_dir, data = project
    files = {}
    if names:
        for split, name in zip(("train", "dev", "test"), names):
            (data / f"{split}.txt").rename(data / name)
            files[f"{split}_file"] = name
    project_run(
        "train", project_dir, model=tiny_llama, data_dir=data, attention=attention,
        bidirectional_from_layer=from_layer, max_steps=6, seed=3, **files,
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

    project_run("evaluate", project_dir, model=tiny_llama, data_dir=data, **files)
    metrics = json.loads((project_dir / "metrics" / "test.json").read_text())
    assert 0.0 <= metrics["ents_f"] <= 1.0
    assert set(metrics["ents_per_type"] or {}) <= {"DRUG", "DISEASE"}

    texts = data / "texts.txt"
    texts.write_text("the patient took Aspirin for a headache\n\nIbuprofen for fever\n")
    output = project_dir / "metrics" / "annotated.jsonl"
    project_run("annotate", project_dir, model=tiny_llama, data_dir=data, annotate_input=texts, annotate_output=output)
    rows = [json.loads(line) for line in output.read_text().splitlines()]
    assert [row["text"] for row in rows] == ["the patient took Aspirin for a headache", "", "Ibuprofen for fever"]
    assert {e["label"] for row in rows for e in row["entities"]} <= {"DRUG", "DISEASE"}


def test_train_rejects_a_bad_attention_value(project, tiny_llama):
    project_dir, data = project
    args = [sys.executable, "-m", "spacy", "project", "run", "train", str(project_dir),
            f"--vars.model={tiny_llama}", f"--vars.data_dir={data}", "--vars.attention=both", "--vars.max_steps=2"]
    result = subprocess.run(args, capture_output=True, text=True, cwd=project_dir, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert result.returncode != 0
    assert "attention: got 'both'; allowed values: ['causal', 'bidirectional', 'echo']" in result.stdout + result.stderr


def test_train_names_a_missing_data_file(project, tiny_llama, tmp_path):
    project_dir, _ = project
    empty = tmp_path / "empty"
    empty.mkdir()
    args = [sys.executable, "-m", "spacy", "project", "run", "train", str(project_dir),
            f"--vars.model={tiny_llama}", f"--vars.data_dir={empty}", "--vars.max_steps=2"]
    result = subprocess.run(args, capture_output=True, text=True, cwd=project_dir)
    assert result.returncode != 0
    assert f"CoNLL file not found: {empty / 'train.txt'}" in " ".join(result.stdout.split())
    missing = tmp_path / "missing"
    result = subprocess.run(args[:-2] + [f"--vars.data_dir={missing}", "--vars.max_steps=2"], capture_output=True,
                            text=True, cwd=project_dir)
    assert result.returncode != 0
    assert f"Missing dependency specified by command 'train':\n{missing}/" in result.stdout


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


def test_full_workflow_records_runs_and_reports_them(project, tiny_llama):
    """Two `full-*` runs (a few steps each) and a continued one, then `full-report`: the table, the
    figure and the learning curves come from the recorded result files alone."""
    project_dir, data = project
    common = {"model": tiny_llama, "data_dir": data, "full_steps": 4}
    project_run("convert", project_dir, **common)
    project_run("full-bidirectional", project_dir, **common)
    project_run("full-causal", project_dir, **common)
    # document context: the same sentences and words, fewer Docs (up to 3 sentences each)
    project_run("full-bidirectional-context", project_dir, **common, context_sents=3)
    nlp = spacy.blank("en")
    read_docs = lambda path: list(DocBin().from_disk(path).get_docs(nlp.vocab))
    sentences, in_context = read_docs(project_dir / "corpus" / "full" / "test.spacy"), read_docs(project_dir / "corpus" / "full-context" / "test.spacy")
    assert (len(sentences), len(in_context)) == (8, 3)
    assert [t.text for doc in in_context for t in doc] == [t.text for doc in sentences for t in doc]
    # a second schedule from the bidirectional run's model-best: mark its weights (+1
    # on one tensor of each component); after two warm-up steps (learning rate
    # <= 5e-6) the continued pipeline still carries the marks
    best = project_dir / "training" / "full" / "bidirectional-s0" / "model-best"
    source = spacy.load(best)
    norm = source.get_pipe("transformer").model.shims[0]._model.backbone.norm.weight
    with torch.no_grad():
        norm += 1.0
    ner_node = next(node for node in source.get_pipe("ner").model.walk() if node.param_names and node.has_param(node.param_names[0]))
    ner_param = ner_node.param_names[0]
    ner_node.set_param(ner_param, ner_node.get_param(ner_param) + 1.0)
    source.to_disk(best)
    project_run("full-bidirectional-continued", project_dir, **common, continue_steps=2)
    continued = spacy.load(project_dir / "training" / "full" / "bidirectional-continued-s0" / "model-last")
    continued_norm = continued.get_pipe("transformer").model.shims[0]._model.backbone.norm.weight
    assert torch.allclose(continued_norm, norm, atol=1e-3) and not torch.allclose(continued_norm, norm - 1.0, atol=0.5)
    continued_ner = [n for n in continued.get_pipe("ner").model.walk() if n.name == ner_node.name][0].get_param(ner_param)
    assert numpy.allclose(continued_ner, ner_node.get_param(ner_param), atol=1e-3)
    # --max-steps trains exactly that many steps: no early stop (patience 1 would end it
    # at step 1, whatever the scores), and the continuation of a continuation counts its
    # steps from the first run's start
    chained = project_dir / "training" / "chained"
    subprocess.run([sys.executable, "scripts/train_run.py", "configs/ner_bidirectional.cfg", str(chained),
                    "--init-from", "training/full/bidirectional-continued-s0/model-last", "--max-steps", "6",
                    "--training.patience", "1", "--training.eval_frequency", "2",
                    "--paths.train", "corpus/full/train.spacy", "--paths.dev", "corpus/full/dev.spacy"],
                   cwd=project_dir, check=True, capture_output=True)
    read_log = lambda path: [json.loads(line) for line in path.read_text().splitlines()]
    assert [entry["step"] for entry in read_log(chained / "train_log.jsonl")] == [0, 2, 4, 6]
    source_best_step = max((entry["score"], entry["step"]) for entry in read_log(best.parent / "train_log.jsonl"))[1]
    assert json.loads((chained / "run.json").read_text())["init_from_step"] == source_best_step + 2
    for extra, expected in (
        (["--init-from", "nowhere"], f"--init-from: no trained pipeline (config.cfg) in {project_dir / 'nowhere'}"),
        (["--init-from", str(best), "--components.transformer.model.attention", "causal"],
         "drop the overrides ['components.transformer.model.attention']"),
    ):
        wrong = subprocess.run([sys.executable, "scripts/train_run.py", "configs/ner_bidirectional.cfg", "unused", *extra],
                               capture_output=True, text=True, cwd=project_dir)
        assert wrong.returncode != 0 and expected in " ".join((wrong.stdout + wrong.stderr).split())  # wasabi wraps lines
    results = project_dir / "results" / "full"
    continued_run = json.loads((results / "bidirectional-continued-s0" / "run.json").read_text())
    assert continued_run["init_from"] == "training/full/bidirectional-s0/model-best"
    source_log = [json.loads(line) for line in (results / "bidirectional-s0" / "train_log.jsonl").read_text().splitlines()]
    best_step = max((entry["score"], entry["step"]) for entry in source_log)[1]  # ties: spaCy saves the later
    assert continued_run["init_from_step"] == best_step
    assert sorted(p.name for p in results.iterdir()) == ["bidirectional-context-s0", "bidirectional-continued-s0", "bidirectional-s0", "causal-s0"]
    for run in results.iterdir():
        assert sorted(p.name for p in run.iterdir()) == ["run.json", "test.json", "train_log.jsonl"]
    # the model and training outputs stay out of the recorded results
    shutil.rmtree(project_dir / "training")
    project_run("full-report", project_dir, **common)
    docs = project_dir / "docs"
    table, against_causal, against_bidirectional = (docs / "results_full_table.md").read_text().split("\n\n")
    table = table.splitlines()
    assert [row.split(" | ")[0] for row in table[2:]] == ["| bidirectional-context", "| bidirectional-continued", "| bidirectional", "| causal"]
    assert against_causal.splitlines()[0].startswith("| against causal | test F1 (points) |")
    assert against_causal.splitlines()[4].startswith("| bidirectional | ")
    assert against_bidirectional.splitlines()[4].startswith("| causal | ")
    assert [row.split(" | ")[6].split("/")[1] for row in table[2:]] == ["4", "2", "4", "4"]  # best/last step: each run's own
    curves = (docs / "learning_curves_full.md").read_text().splitlines()
    assert curves[0] == "| step | bidirectional-context-s0 | bidirectional-continued-s0 | bidirectional-s0 | causal-s0 |"
    # the continued run's curve goes on from the step its source was saved at
    assert [int(row.split(" | ")[0][2:]) for row in curves[2:]] == sorted({0, 4, best_step, best_step + 2})
    assert (docs / "results_full.png").stat().st_size > 10_000
    assert (docs / "learning_curves_full.png").stat().st_size > 10_000


@pytest.mark.timeout(1200)
def test_demo_and_variants_workflows(project, tmp_path_factory, tmp_path):
    """Every command of `all` after fetch-model (which downloads), then `variants`, in
    one project (the variants reuse the demo's runs, as a user's do), on a tiny model
    with its LM head (the adaptation predicts pieces through it) and tiny data. Checks
    the demo table, the package `spacy package` built (installed into a fresh
    virtualenv beside this package, loaded by name, evaluated), then the adaptation
    report, each variant trained as named and the variants table beside the demo rows."""
    project_dir, data = project
    model = make_tiny_model(tmp_path_factory.mktemp("tiny-lm"), lm_head=True)
    adapted = project_dir / "assets" / "adapted"
    variables = {
        "model": model, "data_dir": data, "layerwise_from": 2, "demo_sentences": 20,
        "demo_steps": 2, "demo_batch_words": 60,
        "adapted_demo_model": adapted, "adapt_demo_steps": 4, "adapt_demo_batch": 4,
    }
    for command in ("fetch-data", "convert-demo", "train-causal", "train-bidirectional", "train-layerwise",
                    "train-baseline", "evaluate-all", "compare", "package"):
        project_run(command, project_dir, **variables)
    table = (project_dir / "docs" / "results_table.md").read_text().split("\n\n")[0].splitlines()
    assert [row.split(" | ")[0] for row in table[2:]] == ["| bidirectional", "| causal", "| layerwise2", "| spacy-cnn"]
    assert (project_dir / "docs" / "results.png").stat().st_size > 10_000
    runs = {p.parent.name: json.loads(p.read_text()) for p in (project_dir / "training" / "demo").glob("*/run.json")}
    assert all(run["overrides"]["training.max_steps"] == 2 for run in runs.values())
    assert runs["causal-s0"]["overrides"]["training.optimizer.learn_rate.warmup_steps"] == 10
    assert "training.optimizer.learn_rate.warmup_steps" not in runs["spacy-cnn-s0"]["overrides"]

    assert len(list((project_dir / "packages").glob("*/dist/*.tar.gz"))) == 1
    # the package of an LLM pipeline (on tiny data the CNN may be best on dev)
    subprocess.run([sys.executable, "scripts/package_best.py", "training/demo", "packages-llm", "--exclude", "spacy-cnn"],
                   cwd=project_dir, check=True, capture_output=True)
    sdists = list((project_dir / "packages-llm").glob("*/dist/*.tar.gz"))
    assert len(sdists) == 1
    # a fresh virtualenv beside this package: a .pth file adds this environment's
    # site-packages as a site dir (so its editable install of spacy-llama-ner, its
    # dependencies, pip and setuptools are seen); the package goes into the fresh one
    venv = tmp_path / "fresh-venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    here = subprocess.run([sys.executable, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    (Path(site) / "beside.pth").write_text(f"import site; site.addsitedir({here!r})\n")
    install = subprocess.run([str(python), "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index", str(sdists[0])],
                             capture_output=True, text=True)
    assert install.returncode == 0, install.stdout[-2000:] + install.stderr[-2000:]
    name = sdists[0].name.rsplit("-", 1)[0]
    assert (Path(site) / name).is_dir()  # installed into the fresh environment
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    load = subprocess.run(
        [str(python), "-c", f"import spacy; nlp = spacy.load({name!r}); print(nlp.pipe_names, nlp.meta['requirements'])"],
        capture_output=True, text=True, env=env, cwd=tmp_path,
    )
    assert load.returncode == 0, load.stderr[-3000:]
    assert "['transformer', 'ner']" in load.stdout and "spacy-llama-ner" in load.stdout
    metrics = tmp_path / "package-metrics.json"
    evaluate = subprocess.run(
        [str(python), "-m", "spacy", "evaluate", name, str(project_dir / "corpus" / "demo" / "test.spacy"), "--output", str(metrics)],
        capture_output=True, text=True, env=env, cwd=tmp_path,
    )
    assert evaluate.returncode == 0, evaluate.stderr[-3000:]
    assert 0.0 <= json.loads(metrics.read_text())["ents_f"] <= 1.0

    project_run("variants", project_dir, **variables)

    adapt_report = (project_dir / "docs" / "adapt_demo.md").read_text().splitlines()
    assert adapt_report[2].startswith("| 4 | 4 | 19 / 1 | 0.0001 | LoRA r=16, merged | ")
    assert adapt_report[4].startswith("| step | 0 | 4 |") and adapt_report[6].startswith("| held-out loss | ")
    runs = {p.parent.name: json.loads(p.read_text()) for p in (project_dir / "training" / "demo").glob("*/run.json")}
    assert runs["echo-s1"]["overrides"]["components.transformer.model.attention"] == "echo"
    assert runs["adapted-bidirectional-s0"]["overrides"]["paths.model"] == str(adapted)
    assert runs["adapted-bidirectional-s0"]["config"] == "configs/ner_bidirectional.cfg"
    assert runs["bidirectional-frozen-emb-s1"]["overrides"]["components.transformer.model.freeze_embeddings"] is True
    assert all((project_dir / "training" / "demo" / name / "test.json").is_file() for name in runs)
    context_test = json.loads((project_dir / "training" / "demo" / "bidirectional-context10-s0" / "test.json").read_text())
    assert context_test["corpus"] == "corpus/demo-context/test.spacy"
    context_train = DocBin().from_disk(project_dir / "corpus" / "demo-context" / "train.spacy")
    assert [len(list(doc.sents)) for doc in context_train.get_docs(spacy.blank("xx").vocab)] == [10, 10]

    table, against_causal, against_bidirectional = (project_dir / "docs" / "results_variants_table.md").read_text().split("\n\n")
    groups = ["causal", "echo", "bidirectional", "adapted-bidirectional", "bidirectional-context10", "bidirectional-frozen-emb"]
    assert [row.split(" | ")[:2] for row in table.splitlines()[2:]] == [[f"| {g}", "2"] for g in groups]
    assert [row.split(" | ")[0] for row in against_bidirectional.splitlines()[2:]] == [f"| {g}" for g in groups if g != "bidirectional"]
    assert (project_dir / "docs" / "results_variants.png").stat().st_size > 10_000

    wrong = subprocess.run([sys.executable, "scripts/compare.py", "training/demo", "t.md", "t.png", "--groups", "causal,echoes"],
                           capture_output=True, text=True, cwd=project_dir)
    assert wrong.returncode != 0 and "--groups: no scored runs named echoes-sN; found: " in wrong.stderr
    wrong = subprocess.run([sys.executable, "scripts/evaluate_all.py", "training/demo", "corpus/demo/test.spacy", "--only", "echo-s7"],
                           capture_output=True, text=True, cwd=project_dir)
    assert wrong.returncode != 0 and "--only: no trained run echo-s7 in training/demo" in wrong.stderr


def test_train_run_records_the_config_seed_and_names_a_bad_number(project, tiny_llama, tmp_path):
    """scripts/train_run.py on its own: run.json's seed is the one the pipeline trained
    with, also when no --system.seed is given; a non-number option is named."""
    from spacy_llama_ner.conll import conll_to_docbin

    project_dir, data = project
    for split in ("train", "dev"):
        conll_to_docbin(data / f"{split}.txt").to_disk(tmp_path / f"{split}.spacy")
    script = [sys.executable, "scripts/train_run.py", "configs/ner_bidirectional.cfg", str(tmp_path / "out")]
    paths = ["--paths.model", str(tiny_llama), "--paths.train", str(tmp_path / "train.spacy"),
             "--paths.dev", str(tmp_path / "dev.spacy")]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    bad = subprocess.run(script + ["--max-steps", "ten", *paths], capture_output=True, text=True, cwd=project_dir, env=env)
    assert bad.returncode == 1 and "--max-steps: expected a whole number, got 'ten'" in bad.stdout
    subprocess.run(script + ["--max-steps", "2", *paths], check=True, capture_output=True, text=True, cwd=project_dir, env=env)
    config_seed = spacy.util.load_config(ROOT / "configs" / "ner_bidirectional.cfg", interpolate=False)["system"]["seed"]
    assert json.loads((tmp_path / "out" / "run.json").read_text())["seed"] == config_seed

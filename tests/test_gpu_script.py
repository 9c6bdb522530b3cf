"""scripts/gpu_full.sh, the full-scale GPU runs, end to end on the CPU: both training
stages with a tiny model and a tiny corpus, in a copy of the project, so the script
that later runs on the GPU machine is known to work up to the device."""
import json
import os
import shutil
import subprocess
import sys
import tarfile

from spacy_llama_ner.conll import conll_to_docbin
from conftest import ROOT

SENTENCES = (
    "Peter B-PER\nSmith I-PER\nflew O\nto O\nLondon B-LOC\n. O\n\n"
    "the O\nbank O\nin O\nParis B-LOC\nwon O\n\n"
    "Reuters B-ORG\nsaid O\nMonday O\nthe O\nEU B-ORG\nmarket O\n\n"
)


def test_gpu_full_script_runs_both_stages_on_the_cpu(tiny_llama, tmp_path):
    project = tmp_path / "project"
    for name in ("configs", "scripts"):
        shutil.copytree(ROOT / name, project / name)
    shutil.copy(ROOT / "project.yml", project / "project.yml")
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for split, repeat in (("train", 4), ("dev", 2), ("test", 2)):
        (tmp_path / f"{split}.txt").write_text(SENTENCES * repeat)
        conll_to_docbin(tmp_path / f"{split}.txt").to_disk(corpus / f"{split}.spacy")
    out = tmp_path / "out"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        "PY": sys.executable, "GPU_ID": "-1", "SKIP_BUNDLE": "1", "OUT": str(out),
        "SMOL_MODEL_DIR": str(tiny_llama), "BIG_MODEL_DIR": str(tiny_llama), "CORPUS_DIR": str(corpus),
        "MODES": "causal bidirectional echo", "SEEDS": "0", "SMOL_STEPS": "4", "BIG_STEPS": "4",
        "SMOL_BATCH_WORDS": "20", "TMP_ROOT": str(tmp_path / "tmp"),
    }
    result = subprocess.run(
        ["bash", "scripts/gpu_full.sh", "smollm2", "llama1b"],
        cwd=project, env=env, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, (result.stdout[-4000:], result.stderr[-4000:])

    assert {p.name for p in out.iterdir()} == {"results-gpu-smollm2.tar.gz", "results-gpu-llama1b.tar.gz", "gpu_full.log"}
    with tarfile.open(out / "results-gpu-smollm2.tar.gz") as tar:
        names = set(tar.getnames())
    for run in ("causal-s0", "bidirectional-s0", "echo-s0"):
        for name in ("run.json", "train_log.jsonl", "test.json"):
            assert f"results/gpu-smollm2/{run}/{name}" in names
    # back here, the table is built from the unpacked tarball, as for the CPU runs
    back = tmp_path / "back"
    with tarfile.open(out / "results-gpu-smollm2.tar.gz") as tar:
        tar.extractall(back)
    subprocess.run([sys.executable, str(ROOT / "scripts" / "compare.py"), str(back / "results" / "gpu-smollm2"),
                    str(tmp_path / "table.md"), str(tmp_path / "table.png")], check=True, capture_output=True)
    table = (tmp_path / "table.md").read_text().split("\n\n")[0]  # the main table, not the differences
    rows = [line.split("|")[1].strip() for line in table.splitlines()[2:]]
    assert sorted(rows) == ["bidirectional", "causal", "echo"]
    run = json.loads((project / "results" / "gpu-smollm2" / "causal-s0" / "run.json").read_text())
    assert run["overrides"]["components.transformer.model.attention"] == "causal"
    assert run["overrides"]["training.max_steps"] == 4
    echo = json.loads((project / "results" / "gpu-smollm2" / "echo-s0" / "run.json").read_text())
    assert echo["overrides"]["components.transformer.model.attention"] == "echo"

    test = json.loads((project / "results" / "gpu-llama1b" / "test.json").read_text())
    assert 0.0 <= test["ents_f"] <= 1.0
    with tarfile.open(out / "results-gpu-llama1b.tar.gz") as tar:
        assert "results/gpu-llama1b/test.json" in tar.getnames()
    assert "largest file:" in result.stdout and "stage llama1b:" in result.stdout

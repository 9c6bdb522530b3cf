"""scripts/gpu_full.sh, the full-scale GPU runs, end to end on the CPU: the probe and
both training stages with a tiny model and a tiny corpus, in a copy of the project,
so the script that later runs on the GPU machine is known to work up to the device."""
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


def test_gpu_full_script_runs_every_training_stage_on_the_cpu(tiny_llama, tmp_path):
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
        "RUNS": "causal-s0 bidirectional-lr0.0001-head32-s0 echo-s0", "PARALLEL": "2", "DEADLINE_S": "100000",
        "SMOL_STEPS": "4", "BIG_STEPS": "4", "PROBE_STEPS": "3", "SMOL_BATCH_WORDS": "20",
        "TMP_ROOT": str(tmp_path / "tmp"),
    }
    result = subprocess.run(
        ["bash", "scripts/gpu_full.sh", "probe", "smollm2", "llama1b"],
        cwd=project, env=env, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, (result.stdout[-4000:], result.stderr[-4000:])

    # the probe's pace decides how many runs start at once: both allowed, as the deadline is far
    probed, pace, init = (tmp_path / "tmp" / "probe.txt").read_text().split()
    assert probed == "2" and float(pace) > 0 and float(init) > 0
    assert "started 2 at once" in result.stdout and "started 1 at once" in result.stdout
    assert {p.name for p in out.iterdir()} == {"results-gpu-smollm2.tar.gz", "results-gpu-llama1b.tar.gz", "gpu_full.log", "runs"}
    assert {p.name for p in (out / "runs").iterdir()} == {
        "probe-p1.log", "probe-p2.log", "causal-s0.log", "bidirectional-lr0.0001-head32-s0.log", "echo-s0.log"}
    with tarfile.open(out / "results-gpu-smollm2.tar.gz") as tar:
        names = set(tar.getnames())
    for run in ("causal-s0", "bidirectional-lr0.0001-head32-s0", "echo-s0"):
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
    assert sorted(rows) == ["bidirectional-lr0.0001-head32", "causal", "echo"]
    run = json.loads((project / "results" / "gpu-smollm2" / "causal-s0" / "run.json").read_text())
    assert run["overrides"]["components.transformer.model.attention"] == "causal"
    assert run["overrides"]["training.max_steps"] == 4
    assert run["overrides"]["training.optimizer.learn_rate.initial_rate"] == 0.0002
    tuned = json.loads((project / "results" / "gpu-smollm2" / "bidirectional-lr0.0001-head32-s0" / "run.json").read_text())
    assert tuned["overrides"]["training.optimizer.learn_rate.initial_rate"] == 0.0001
    assert tuned["overrides"]["components.ner.model.hidden_width"] == 32
    assert tuned["overrides"]["components.transformer.model.attention"] == "bidirectional"
    echo = json.loads((project / "results" / "gpu-smollm2" / "echo-s0" / "run.json").read_text())
    assert echo["overrides"]["components.transformer.model.attention"] == "echo"

    test = json.loads((project / "results" / "gpu-llama1b" / "test.json").read_text())
    assert 0.0 <= test["ents_f"] <= 1.0
    with tarfile.open(out / "results-gpu-llama1b.tar.gz") as tar:
        assert "results/gpu-llama1b/test.json" in tar.getnames()
    assert "largest file:" in result.stdout and "stage llama1b:" in result.stdout




def plan(cap, elapsed, deadline, steps, single_pace, longest, probe=""):
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "gpu_plan.py"), *map(str, (cap, elapsed, deadline, steps,
                             single_pace, longest)), probe], capture_output=True, text=True, check=True)
    return int(result.stdout)


def test_the_plan_starts_as_many_runs_as_finish_by_the_deadline():
    """With the H200 probe's figures (6 at once: 1.452 s per step, 24 s to start), 600
    steps and 570 s: three at once need 24 + 1.1 x 600 x 0.726 + 30 = 533 s, two 384 s."""
    probe = "6 1.452 24"
    assert plan(6, 30, 570, 600, 0.5, 0, probe) == 3
    assert plan(6, 43, 570, 600, 0.5, 0, probe) == 2  # as on the device, after 43 s of conversion
    assert plan(6, 200, 570, 600, 0.5, 0, probe) == 0  # not even one alone (384 s)
    assert plan(1, 0, 570, 600, 0.5, 0, probe) == 1  # never more than asked for
    assert plan(6, 0, 10_000, 600, 0.5, 0, probe) == 6
    # without a probe: one at a time, judged by the longest finished run, none if unknown
    assert plan(6, 100, 570, 600, 0.5, 335) == 1
    assert plan(6, 300, 570, 600, 0.5, 335) == 0
    assert plan(6, 0, 570, 600, 0.5, 0) == 0


def test_gpu_full_script_starts_no_run_that_would_miss_the_deadline(tiny_llama, tmp_path):
    """With a probe saying a run takes longer than the time left, no run starts; with a
    probe's figures given as PROBE (a fresh machine, no probe run) one that fits does;
    a run name it cannot read fails before any run, naming the allowed settings."""
    project = tmp_path / "project"
    for name in ("configs", "scripts"):
        shutil.copytree(ROOT / name, project / name)
    (tmp_path / "tmp").mkdir()
    (tmp_path / "tmp" / "probe.txt").write_text("4 200 300\n")  # 4 at once, 200 s per step, 300 s to start
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (tmp_path / "train.txt").write_text(SENTENCES)
    for split in ("train", "dev", "test"):
        conll_to_docbin(tmp_path / "train.txt").to_disk(corpus / f"{split}.spacy")
    env = {
        **os.environ, "PY": sys.executable, "GPU_ID": "-1", "SKIP_BUNDLE": "1", "OUT": str(tmp_path / "out"),
        "SMOL_MODEL_DIR": str(tiny_llama), "CORPUS_DIR": str(corpus), "TMP_ROOT": str(tmp_path / "tmp"),
        "PARALLEL": "4", "SMOL_STEPS": "4", "DEADLINE_S": "500",
    }

    def run(runs):
        return subprocess.run(["bash", "scripts/gpu_full.sh", "smollm2"], cwd=project, env={**env, "RUNS": runs},
                              capture_output=True, text=True, timeout=120)

    # one alone: 300 + 1.1 x 4 steps x 50 s + 30 = 550 s > 500 s
    result = run("causal-s1 bidirectional-s1")
    assert result.returncode == 0, result.stdout[-4000:]
    assert "not started: causal-s1 bidirectional-s1" in result.stdout
    assert not (project / "results" / "gpu-smollm2" / "causal-s1").exists()

    # a probe's figures given as PROBE instead of the machine's probe.txt: 20 s + 1.1 x 4 x 0.5 + 30 s fits
    (tmp_path / "tmp" / "probe.txt").unlink()
    result = subprocess.run(["bash", "scripts/gpu_full.sh", "smollm2"], cwd=project, capture_output=True, text=True,
                            timeout=300, env={**env, "RUNS": "causal-s3", "PROBE": "6 1.452 20",
                                              "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))})
    assert result.returncode == 0, result.stdout[-4000:]
    assert "started 1 at once" in result.stdout
    assert (project / "results" / "gpu-smollm2" / "causal-s3" / "test.json").is_file()

    result = run("causal-s2 bidirectional-lr1e-4-s0")
    assert result.returncode != 0
    # the script sends its errors to its log and console (stdout) too
    assert "run 'bidirectional-lr1e-4-s0': unknown setting 'lr1e'" in result.stdout
    assert "lr0.0001" in result.stdout and "headWIDTH" in result.stdout
    assert not (project / "results" / "gpu-smollm2" / "causal-s2").exists()

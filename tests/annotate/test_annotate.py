"""The annotate command on real files with a real (tiny, trained) pipeline: JSON Lines and
plain text, bad lines reported with file:line, resuming after a kill, n_process=2 and a
local Ray cluster giving the same output file, as float32 and with --quantize int8.

Most runs call the command's `main` in this process: starting Python, spaCy and torch
again costs seconds a run. The runs that need a process of their own (a kill, worker
processes, Ray) get one; the plain-text test and the killed run start the command as
users do, `python -m spacy_llama_ner.annotate`."""
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import spacy
from spacy.tokens import DocBin

from conftest import ROOT, TRAIN, WORDS, load_script, train_tiny
from spacy_llama_ner.annotate import main as annotate_main


# --quantize int8: the transformer's quantize = "int8" when the pipeline loads
INT8 = {"components": {"transformer": {"model": {"quantize": "int8"}}}}
_TRAINED = {}  # tiny model -> its trained pipeline directory, for the whole session


@pytest.fixture(scope="module")
def pipeline_dir(tiny_llama, tmp_path_factory) -> Path:
    """The tiny trained pipeline, trained once a session: test_annotate_quantize and
    test_data_safety import this fixture (a fixture imported into another module runs
    again there, whatever its scope). No test writes into it: they copy it first."""
    if tiny_llama not in _TRAINED:
        path = tmp_path_factory.mktemp("annotate") / "pipeline"
        train_tiny(tiny_llama, "bidirectional", steps=20).to_disk(path)
        _TRAINED[tiny_llama] = path
    return _TRAINED[tiny_llama]


def some_texts(n: int, seed: int = 0):
    rng = random.Random(seed)
    texts = [t for t, _ in TRAIN]
    while len(texts) < n:
        texts.append(" ".join(rng.choice(WORDS) for _ in range(rng.choice([1, 4, 9, 25]))))
    return texts[:n]


def run_cli(*args, check=True) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "spacy_llama_ner.annotate", *map(str, args), "--no-progress"],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    if check:
        assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


# Several annotate runs in one Python process, through the command's `main`: worker
# processes (--n-process) are forked before Ray starts, as forking a process that runs
# Ray is not safe; Ray starts once, as --ray local starts it, for every --ray run (each
# run starts its own actors, which load the pipeline).
DRIVER = """
import json, logging, os, sys
from spacy_llama_ner.annotate import main
for args in json.loads(sys.argv[1]):
    if "--ray" in args:
        import ray
        if not ray.is_initialized():
            ray.init(num_cpus=os.cpu_count(), include_dashboard=False, logging_level=logging.WARNING)
    if main(args + ["--no-progress"]) != 0:
        sys.exit(f"failed: {args}")
"""


def run_in_one_process(*runs) -> subprocess.CompletedProcess:
    """Annotate runs (argument lists) one after the other in one new process: the
    --n-process runs must come before the --ray runs."""
    runs = [[str(a) for a in args] for args in runs]
    ray_started = False
    for args in runs:
        ray_started |= "--ray" in args
        assert not (ray_started and "--n-process" in args), "--n-process runs go before the first --ray run"
    proc = subprocess.run([sys.executable, "-c", DRIVER, json.dumps(runs)], cwd=ROOT, capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def annotate(*args) -> int:
    """The command's exit status, run in this process."""
    return annotate_main([*map(str, args), "--no-progress"])


def read_jsonl(path: Path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def pipe_entities(pipeline, texts, config: dict, batch_size: int) -> list:
    """The entities of `nlp.pipe` for the pipeline loaded with `config` (overrides)."""
    nlp = spacy.load(pipeline, config=config)
    return [[(e.start_char, e.end_char, e.label_) for e in doc.ents] for doc in nlp.pipe(texts, batch_size=batch_size)]


def output_entities(path) -> list:
    return [[(e["start"], e["end"], e["label"]) for e in row["entities"]] for row in read_jsonl(path)]


def test_jsonl_carries_fields_and_matches_nlp_pipe(pipeline_dir, tmp_path):
    texts = some_texts(40) + ["", "Zürich — «Peter Smith» 🙂 in London"]
    records = [{"id": i, "text": t, "meta": {"n": [1, 2.5, None], "ok": True}, "ünï": "çödé"} for i, t in enumerate(texts)]
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    out = tmp_path / "out.jsonl"
    assert annotate_main([str(pipeline_dir), str(source), str(out), "--batch-size", "7", "--no-progress"]) == 0

    result = read_jsonl(out)
    nlp = spacy.load(pipeline_dir)
    expected = [[(e.start_char, e.end_char, e.label_) for e in doc.ents] for doc in nlp.pipe(texts)]
    assert sum(map(len, expected)) > 0
    assert len(result) == len(records)
    for record, row, ents in zip(records, result, expected):
        assert {k: v for k, v in row.items() if k != "entities"} == record
        assert list(row) == list(record) + ["entities"]
        assert [(e["start"], e["end"], e["label"]) for e in row["entities"]] == ents
        assert all(e["text"] == record["text"][e["start"] : e["end"]] for e in row["entities"])
    assert result[len(texts) - 2]["entities"] == []  # the empty text


def test_plain_text_one_document_per_line(pipeline_dir, tmp_path):
    source = tmp_path / "in.txt"
    source.write_bytes("\ufeffPeter Smith flew to London on Monday .\r\n\nMaria Johnson works in Paris .".encode())
    out = tmp_path / "out.jsonl"
    run_cli(pipeline_dir, source, out)
    rows = read_jsonl(out)
    assert [r["text"] for r in rows] == ["Peter Smith flew to London on Monday .", "", "Maria Johnson works in Paris ."]
    assert rows[1]["entities"] == [] and rows[0]["entities"]


BAD_LINES = [
    (b"{not json\n", "not valid JSON"),
    (b'["a list"]\n', "a JSON list, not an object"),
    (b'{"title": "no text"}\n', "no 'text' field"),
    (b'{"text": 42}\n', "'text' is a JSON int, not a string"),
    (b'{"text": "x\xff"}\n', "not valid UTF-8"),
    (b'{"text": "\\ud83d and more"}\n', "'text' has the JSON escape \\ud83d, half of a surrogate pair"),
]


def write_with_bad_lines(path: Path):
    good = [json.dumps({"text": t}).encode() + b"\n" for t in some_texts(6)]
    lines = [good[0], good[1]]
    for (bad, _), ok in zip(BAD_LINES, good[2:] + good[:2]):
        lines += [bad, ok]
    path.write_bytes(b"".join(lines))
    return lines


def test_bad_line_stops_with_file_and_line_keeping_what_came_before(pipeline_dir, tmp_path, capsys):
    source = tmp_path / "in.jsonl"
    write_with_bad_lines(source)
    out = tmp_path / "out.jsonl"
    assert annotate(pipeline_dir, source, out) == 1
    assert f"error: {source}:3: not valid JSON" in capsys.readouterr().err
    assert len(read_jsonl(out)) == 2
    # the same arguments resume at the bad line, and stop there again: nothing written twice
    assert annotate(pipeline_dir, source, out) == 1
    assert f"error: {source}:3: not valid JSON" in capsys.readouterr().err
    assert len(read_jsonl(out)) == 2


def test_skip_bad_lines_reports_each_and_counts_them(pipeline_dir, tmp_path, capsys):
    source = tmp_path / "in.jsonl"
    lines = write_with_bad_lines(source)
    out = tmp_path / "out.jsonl"
    assert annotate(pipeline_dir, source, out, "--skip-bad-lines") == 0
    captured = capsys.readouterr()
    for number, (_, reason) in zip(range(3, 2 * len(BAD_LINES) + 3, 2), BAD_LINES):
        assert f"{source}:{number}: skipped: {reason}" in captured.err
    assert f"{len(BAD_LINES)} bad lines skipped" in " ".join(captured.out.split())
    assert len(read_jsonl(out)) == len(lines) - len(BAD_LINES)


def test_user_mistakes_are_named(pipeline_dir, tmp_path, capsys):
    source = tmp_path / "in.txt"
    source.write_text("Peter Smith\n")
    cases = [
        ((tmp_path / "nope", source, tmp_path / "o1.jsonl"), f"pipeline not found: {tmp_path / 'nope'}"),
        ((pipeline_dir, tmp_path / "missing.txt", tmp_path / "o2.jsonl"), f"input file not found: {tmp_path / 'missing.txt'}"),
        ((pipeline_dir, source, tmp_path / "o3.jsonl", "--batch-size", "0"), "--batch-size must be at least 1, got 0"),
    ]
    existing = tmp_path / "o4.jsonl"
    existing.write_text("precious\n")
    cases.append(((pipeline_dir, source, existing), f"{existing} exists and is not the output of an interrupted run"))
    for args, message in cases:
        status = annotate(*args)
        captured = capsys.readouterr()
        assert status == 1 and f"error: {message}" in captured.err, (args, captured.out, captured.err)
    assert existing.read_text() == "precious\n"


@pytest.mark.timeout(900)
def test_a_killed_run_resumes_without_losing_or_repeating_a_line(pipeline_dir, tmp_path, capsys):
    """SIGKILLed from outside once its progress file records 300 lines (a checkpoint every
    64 lines: 4 batches of 16), with some 900 lines still to go: about a second's work on
    an idle machine (1,000 documents/s), 50 times the 20 ms the test waits between two
    looks at the progress file. Then resumed."""
    texts = some_texts(1200, seed=3)
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps({"n": i, "text": t}) + "\n" for i, t in enumerate(texts)))
    reference = tmp_path / "reference.jsonl"
    assert annotate(pipeline_dir, source, reference, "--batch-size", "16") == 0

    out = tmp_path / "out.jsonl"
    progress = out.with_name(out.name + ".progress.json")
    args = [pipeline_dir, source, out, "--batch-size", "16", "--checkpoint-every", "50", "--docbin", tmp_path / "docs"]
    proc = subprocess.Popen([sys.executable, "-m", "spacy_llama_ner.annotate", *map(str, args), "--no-progress"],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if progress.exists() and json.loads(progress.read_text())["lines_done"] >= 300:
            break
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    saved = json.loads(progress.read_text())
    assert not saved["complete"] and 300 <= saved["lines_done"] < len(texts), saved
    time.sleep(0.5)  # the killed run may have written past its last checkpoint: resuming cuts that off
    with open(out, "ab") as f:  # and surely has here, the last line cut short (a write buffer's end)
        f.write(b'{"n": 1, "text": "Maria Johnson works for the Eur')

    capsys.readouterr()
    assert annotate(*args) == 0
    assert f"Resuming after input line {saved['lines_done']:,}:" in capsys.readouterr().out
    assert out.read_bytes() == reference.read_bytes()
    docs = list(DocBin().from_disk(p).get_docs(spacy.blank("en").vocab) for p in sorted((tmp_path / "docs").glob("*.spacy")))
    docs = [d for shard in docs for d in shard]
    assert [d.text for d in docs] == texts
    assert [[(e.start_char, e.end_char, e.label_) for e in d.ents] for d in docs] == [
        [(e["start"], e["end"], e["label"]) for e in row["entities"]] for row in read_jsonl(reference)
    ]
    assert annotate(*args) == 0
    assert "already complete" in capsys.readouterr().out

    assert annotate(pipeline_dir, source, out, "--batch-size", "16", "--text-key", "n") == 1
    assert "text_key: 'text' then, 'n' now" in capsys.readouterr().err


def test_a_retrained_pipeline_is_not_taken_for_a_finished_run(pipeline_dir, tmp_path, capsys):
    pipeline = tmp_path / "pipeline"
    shutil.copytree(pipeline_dir, pipeline)
    source = tmp_path / "in.txt"
    source.write_text("Peter Smith flew to London .\n")
    out = tmp_path / "out.jsonl"
    assert annotate(pipeline, source, out) == 0
    meta = pipeline / "meta.json"
    time.sleep(0.01)
    meta.write_text(meta.read_text())
    assert annotate(pipeline, source, out) == 1
    assert "the pipeline's files changed" in capsys.readouterr().err


@pytest.mark.timeout(900)
def test_two_processes_and_local_ray_write_the_same_file(pipeline_dir, tmp_path):
    """As float32, the three ways write the same file. With --quantize int8 each gives the
    entities nlp.pipe gives with the transformer's quantize = "int8", not the float32 ones:
    the pipeline is quantized in the one process, before nlp.pipe forks its workers, and in
    every Ray actor. 16 documents a batch: several batches per worker and per actor, and
    nlp.pipe gets the same batches (int8 scales each batch's activations by their largest
    value, so another batch changes a Doc's features). The float32 and int8 runs with two
    processes and on Ray share one process (`run_in_one_process`)."""
    texts = some_texts(300, seed=5)
    source = tmp_path / "in.txt"
    source.write_text("\n".join(texts) + "\n", encoding="utf-8")
    expected_int8 = pipe_entities(pipeline_dir, texts, INT8, batch_size=16)
    modes = {"one": [], "two": ["--n-process", "2"], "ray": ["--ray", "local", "--actors", "2"]}
    outputs, runs = {}, []
    for quantize in ("float32", "int8"):
        for name, extra in modes.items():
            outputs[quantize, name] = tmp_path / f"{quantize}-{name}.jsonl"
            args = [pipeline_dir, source, outputs[quantize, name], "--batch-size", "16", *extra]
            args += ["--quantize", "int8"] if quantize == "int8" else []
            if name == "one":
                assert annotate(*args) == 0
            else:
                runs.append(args)
    run_in_one_process(*sorted(runs, key=lambda args: "--ray" in args))  # two processes first
    reference = outputs["float32", "one"].read_bytes()
    assert reference.count(b"\n") == 300 and b'"label"' in reference
    assert outputs["float32", "two"].read_bytes() == reference
    assert outputs["float32", "ray"].read_bytes() == reference
    assert expected_int8 != output_entities(outputs["float32", "one"])  # a run that ignored --quantize shows
    for name in modes:
        assert output_entities(outputs["int8", name]) == expected_int8, name


@pytest.mark.timeout(600)
def test_annotate_benchmark_times_every_way_against_the_bare_loop(pipeline_dir, tmp_path):
    docbin = DocBin()
    blank = spacy.blank("en")
    for text in some_texts(40, seed=7):
        docbin.add(blank(text))
    docbin.to_disk(tmp_path / "dev.spacy")
    # the script's main in this process: each way it times is a command of its own
    benchmark = load_script("experiments/causal_vs_bidirectional/scripts/benchmark_annotate.py")
    benchmark.main([str(pipeline_dir), str(tmp_path / "dev.spacy"), str(tmp_path / "bench"), "--n-texts", "30",
                    "--repeats", "1"])
    report = json.loads((tmp_path / "bench.json").read_text())
    assert report["texts"] == 30
    assert list(report["results"]) == ["bare-loop", "annotate", "annotate-nproc2", "annotate-ray2"]
    assert all(r["same_entities_as_bare"] and r["docs_per_s"] > 0 for r in report["results"].values())
    assert "| annotate-ray2 |" in (tmp_path / "bench.md").read_text()

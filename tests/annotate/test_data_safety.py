"""Issue 33: the annotate command on real files and a real (tiny, trained) pipeline, as a
new user would meet it: nlp.pipe's entities on any input, interrupted and failed runs that
the same command resumes, bad lines of every kind named, --docbin that deletes nothing it
did not write, a changed INPUT or a damaged progress file named, scores, truncation counts."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import spacy
from spacy.tokens import DocBin
from spacy.util import load_config

import marker_components  # noqa: F401  (registers the test components in this process)
from conftest import ROOT, make_nlp, train_tiny
from marker_components import batch_label, score_of
from spacy_llama_ner.annotate import main as annotate_main
from spacy_llama_ner.annotate.records import Progress
from test_annotate import pipeline_dir, run_in_one_process  # noqa: F401  (pipeline_dir: a fixture)

CODE = Path(marker_components.__file__)


@pytest.fixture(scope="module")
def base_pipeline(pipeline_dir) -> Path:
    """test_annotate's tiny trained pipeline (trained once a session); copied before any change."""
    return pipeline_dir


def with_components(base: Path, dest: Path, *names: str, batch_size: int = None) -> Path:
    nlp = spacy.load(base)
    for name in names:
        nlp.add_pipe(name)
    nlp.to_disk(dest)
    if batch_size:
        config = load_config(dest / "config.cfg", interpolate=False)
        config["nlp"]["batch_size"] = batch_size
        config.to_disk(dest / "config.cfg")
    return dest


@pytest.fixture(scope="module")
def marker_pipeline(base_pipeline, tmp_path_factory) -> Path:
    """Labels each doc by its nlp.pipe batch; [nlp] batch_size = 4 (not the command's old 64)."""
    return with_components(base_pipeline, tmp_path_factory.mktemp("marker") / "pipeline", "test_crash",
                           "test_batch_marker", batch_size=4)


def texts_with_bad_and_blank_lines(path: Path, n: int = 30) -> list:
    """JSON Lines with n good records (one a long single-line text), a bad line and a
    blank line among them; returns the good texts in order."""
    words = "Peter Smith flew to London on Monday and met Maria Johnson of the European Union".split()
    texts = [" ".join(words[: 3 + i % 12]) + f" {i}" for i in range(n)]
    texts[5] = " ".join(words * 40)  # 640 words on one line: several strided spans
    lines = [json.dumps({"id": i, "text": t}) + "\n" for i, t in enumerate(texts)]
    lines.insert(7, "{broken\n")
    lines.insert(12, "   \n")
    path.write_text("".join(lines), encoding="utf-8")
    return texts


def labels(path: Path):
    return [[e["label"] for e in json.loads(line)["entities"]] for line in path.read_text(encoding="utf-8").splitlines()]


def pipe_labels(pipeline: Path, texts):
    nlp = spacy.load(pipeline)
    return [[e.label_ for e in doc.ents] for doc in nlp.pipe(texts)]


def run_cli(*args, env=None, check=True) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "spacy_llama_ner.annotate", *map(str, args), "--no-progress"],
                          cwd=ROOT, capture_output=True, text=True, timeout=600, env={**os.environ, **(env or {})})
    if check:
        assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


# --- item 1: nlp.pipe's entities --------------------------------------------------------

def test_entities_are_the_ones_nlp_pipe_gives_for_the_same_texts(marker_pipeline, tmp_path, capsys):
    """Each doc's label names its batch: equal labels mean equal batches, so equal noise.
    The old command batched by its own 64 instead of the pipeline's batch_size."""
    source = tmp_path / "in.jsonl"
    texts = texts_with_bad_and_blank_lines(source)
    out = tmp_path / "out.jsonl"
    assert annotate_main([str(marker_pipeline), str(source), str(out), "--skip-bad-lines", "--no-progress"]) == 0
    expected = pipe_labels(marker_pipeline, texts)
    assert expected[0] == [batch_label(texts[:4])]
    assert labels(out) == expected
    assert "1 bad lines skipped, 1 blank lines" in " ".join(capsys.readouterr().out.split())


def test_a_killed_resumed_run_and_ray_batch_as_nlp_pipe_does(marker_pipeline, tmp_path, capsys):
    """Killed (at once, as SIGKILL does) after 19 documents with checkpoints every 3 lines,
    then resumed: every document was batched as nlp.pipe batches it; the same on Ray
    with two actors and with two processes (those two runs share one process)."""
    source = tmp_path / "in.jsonl"
    texts = texts_with_bad_and_blank_lines(source)
    expected = pipe_labels(marker_pipeline, texts)
    out = tmp_path / "out.jsonl"
    args = [marker_pipeline, source, out, "--skip-bad-lines", "--checkpoint-every", "3", "--code", CODE,
            "--docbin", tmp_path / "docs"]
    killed = run_cli(*args, env={"ANNOTATE_TEST_CRASH_AT": texts[19]}, check=False)
    assert killed.returncode == 9, killed.stderr
    saved = Progress.load(out)
    assert 0 < saved.documents < 19 and saved.documents % 4 == 0 and not saved.complete  # at a batch boundary
    foreign = tmp_path / "docs" / "000000000999.spacy"  # not written by the run: must survive
    foreign.write_bytes(b"mine")
    assert annotate_main([*map(str, args), "--no-progress"]) == 0
    assert "Resuming after input line" in capsys.readouterr().out
    assert labels(out) == expected
    assert foreign.read_bytes() == b"mine"
    foreign.unlink()
    docs = [d for p in sorted((tmp_path / "docs").glob("*.spacy")) for d in DocBin().from_disk(p).get_docs(spacy.blank("en").vocab)]
    assert [d.text for d in docs] == texts

    modes = {"two": ["--n-process", "2"], "ray": ["--ray", "local", "--actors", "2"]}  # two processes first
    run_in_one_process(*[[marker_pipeline, source, tmp_path / f"{name}.jsonl", "--skip-bad-lines", "--code", CODE, *extra]
                         for name, extra in modes.items()])
    for name in modes:
        assert labels(tmp_path / f"{name}.jsonl") == expected, name


# --- item 2: a run that fails or is killed before its first checkpoint -----------------

def test_a_failed_start_leaves_nothing_in_the_way_of_the_rerun(base_pipeline, tmp_path, capsys):
    source = tmp_path / "in.txt"
    source.write_text("Peter Smith flew to London .\n")
    out = tmp_path / "out.jsonl"
    assert annotate_main([str(base_pipeline), str(source), str(out), "--gpu-id", "0", "--no-progress"]) == 1
    assert "error: --gpu-id 0: no GPU to run on" in capsys.readouterr().err
    assert not out.exists() and not Progress.path_for(out).exists()

    broken = shutil.copytree(base_pipeline, tmp_path / "broken")
    (broken / "transformer" / "model").write_bytes(b"\x00not msgpack")
    assert annotate_main([str(broken), str(source), str(out), "--no-progress"]) == 1
    assert "error: cannot load pipeline" in capsys.readouterr().err
    assert not out.exists()
    shutil.rmtree(broken)
    shutil.copytree(base_pipeline, broken)  # repaired: the same command now runs
    assert annotate_main([str(broken), str(source), str(out), "--no-progress"]) == 0
    assert len(labels(out)) == 1


def test_a_kill_before_the_first_checkpoint_is_resumed(base_pipeline, tmp_path):
    pipeline = with_components(base_pipeline, tmp_path / "pipeline", "test_crash")
    source = tmp_path / "in.txt"
    texts = [f"Peter Smith flew to London {i} ." for i in range(40)]
    source.write_text("\n".join(texts) + "\n")
    out = tmp_path / "out.jsonl"
    killed = run_cli(pipeline, source, out, "--code", CODE, "--batch-size", "8",
                     env={"ANNOTATE_TEST_CRASH_AT": texts[30]}, check=False)
    assert killed.returncode == 9
    assert Progress.path_for(out).exists()  # written before anything else
    assert annotate_main([str(pipeline), str(source), str(out), "--code", str(CODE), "--batch-size", "8", "--no-progress"]) == 0
    assert [json.loads(line)["text"] for line in out.read_text().splitlines()] == texts


def test_overwrite_replaces_a_finished_run_of_an_old_pipeline_and_a_foreign_file(base_pipeline, tiny_llama, tmp_path, capsys):
    """The project's annotate command after a retrain: the finished OUTPUT of the old
    model-best is refused, or with --overwrite replaced by the new pipeline's entities."""
    source = tmp_path / "in.txt"
    texts = [f"Peter Smith flew to London {i} ." for i in range(12)]
    source.write_text("\n".join(texts) + "\n")
    out = tmp_path / "out.jsonl"
    pipeline = shutil.copytree(base_pipeline, tmp_path / "model-best")
    args = [str(pipeline), str(source), str(out), "--no-progress"]
    assert annotate_main(args) == 0
    old_files = Progress.load(out).settings["pipeline_files"]
    shutil.rmtree(pipeline)
    train_tiny(tiny_llama, "bidirectional", seed=1, steps=5).to_disk(pipeline)  # retrained in the same place
    assert annotate_main(args) == 1
    err = capsys.readouterr().err
    assert "the pipeline's files changed" in err and "--overwrite" in err
    assert Progress.load(out).settings["pipeline_files"] == old_files  # refused: nothing touched
    assert annotate_main(args + ["--overwrite"]) == 0
    assert Progress.load(out).settings["pipeline_files"] != old_files and Progress.load(out).complete
    assert labels(out) == pipe_labels(pipeline, texts)

    foreign = tmp_path / "notes.jsonl"
    foreign.write_text("my own file\n")
    assert annotate_main([str(pipeline), str(source), str(foreign), "--no-progress"]) == 1
    assert foreign.read_text() == "my own file\n"
    assert annotate_main([str(pipeline), str(source), str(foreign), "--no-progress", "--overwrite"]) == 0
    assert labels(foreign) == pipe_labels(pipeline, texts)


# --- item 3: bad lines of every kind ---------------------------------------------------

def test_overlong_texts_lone_surrogates_and_huge_lines_are_bad_lines(base_pipeline, tmp_path, capsys):
    source = tmp_path / "in.jsonl"
    lines = [
        json.dumps({"text": "Peter Smith flew to London ."}),
        json.dumps({"text": "a" * 1_000_001}),  # more than nlp.max_length (1,000,000) characters
        '{"text": "ok", "user": "\\ud83d"}',  # a lone surrogate in a field carried through
        json.dumps({"text": "x " * 1_100_000}),  # 2.2 MB: over --max-line-bytes 2,000,000
        json.dumps({"text": "Maria Johnson works in Paris ."}),
    ]
    source.write_text("\n".join(lines) + "\n")
    out = tmp_path / "out.jsonl"
    args = [str(base_pipeline), str(source), str(out), "--max-line-bytes", "2000000", "--no-progress"]
    assert annotate_main(args) == 1
    err = capsys.readouterr().err
    assert f"error: {source}:2: a text of 1,000,001 characters, longer than the pipeline's nlp.max_length (1,000,000)" in err
    # stopped before a whole batch was done: nothing is kept, so other arguments may follow
    assert annotate_main(args + ["--skip-bad-lines"]) == 0
    err = capsys.readouterr().err
    assert f"{source}:2: skipped: a text of 1,000,001 characters" in err
    assert f"{source}:3: skipped: a field has the JSON escape \\ud83d, half of a surrogate pair" in err
    assert f"{source}:4: skipped: a line of {len(lines[3]) + 1:,} bytes, longer than --max-line-bytes 2,000,000" in err
    assert [json.loads(line)["text"] for line in out.read_text().splitlines()] == [
        "Peter Smith flew to London .", "Maria Johnson works in Paris ."]


def test_a_huge_line_is_never_read_into_memory(tmp_path):
    from spacy_llama_ner.annotate.records import read_lines

    source = tmp_path / "in.txt"
    source.write_bytes(b"short\n" + b"y" * 3_000_000 + b"\nlast")
    lines = list(read_lines(source, max_bytes=1000))
    assert [(line.number, line.raw, line.size) for line in lines] == [
        (1, b"short\n", 6), (2, None, 3_000_001), (3, b"last", 4)]
    assert lines[-1].end_byte == source.stat().st_size


# --- item 4: --docbin ------------------------------------------------------------------

def test_docbin_refuses_a_directory_with_files_and_deletes_nothing(base_pipeline, tmp_path, capsys):
    source = tmp_path / "in.txt"
    source.write_text("Peter Smith flew to London .\n")
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "000000000001.spacy").write_bytes(b"an earlier corpus")
    (docs / "notes.txt").write_text("mine")
    out = tmp_path / "out.jsonl"
    assert annotate_main([str(base_pipeline), str(source), str(out), "--docbin", str(docs), "--no-progress"]) == 1
    assert f"error: --docbin {docs}: a new run needs an empty or new directory" in capsys.readouterr().err
    assert (docs / "000000000001.spacy").read_bytes() == b"an earlier corpus"
    assert (docs / "notes.txt").read_text() == "mine"
    assert not out.exists()


# --- item 5: resuming checks INPUT; the progress file ----------------------------------

def test_resume_names_a_changed_input_and_a_damaged_progress_file(base_pipeline, tmp_path, capsys):
    source = tmp_path / "in.jsonl"
    good = [json.dumps({"text": f"Peter Smith flew to London {i} ."}) for i in range(6)]
    source.write_text("\n".join(good[:4] + ["{bad"] + good[4:]) + "\n")
    out = tmp_path / "out.jsonl"
    args = [str(base_pipeline), str(source), str(out), "--batch-size", "2", "--no-progress"]
    assert annotate_main(args) == 1  # stops at line 5, progress saved after line 4
    assert Progress.load(out).lines_done == 4
    original = source.read_bytes()
    source.write_bytes(original.replace(b"London 1", b"Berlin 1"))
    assert annotate_main(args) == 1
    err = capsys.readouterr().err
    assert f"error: {source} changed since {out} was started: its first " in err and "restore it" in err
    source.write_bytes(original[:20])
    assert annotate_main(args) == 1
    assert "is shorter than the input annotated so far" in capsys.readouterr().err
    source.write_bytes(original)

    progress = Progress.path_for(out)
    for damage in ("{", '{"format": 2}', "[]"):
        progress.write_text(damage)
        assert annotate_main(args) == 1
        err = capsys.readouterr().err
        assert f"error: {progress}" in err and f"remove {out} and {progress.name} to start again" in err
        assert "Traceback" not in err


def test_progress_is_fsynced_before_it_replaces_the_old_one(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}"))), real_fsync(fd)))
    monkeypatch.setattr(os, "replace", lambda a, b: (events.append(("replace", str(a))), real_replace(a, b)))
    out = tmp_path / "out.jsonl"
    Progress(settings={}).save(out)
    tmp = str(Progress.path_for(out)) + ".tmp"
    assert events.index(("fsync", tmp)) < events.index(("replace", tmp))


# --- confidence issue, item 3: scores --------------------------------------------------

def test_scores_are_written_from_entity_scores_and_kept_in_the_docbin(base_pipeline, tmp_path):
    pipeline = with_components(base_pipeline, tmp_path / "pipeline", "test_entity_scores")
    source = tmp_path / "in.txt"
    texts = ["Peter Smith flew to London on Monday .", "Maria Johnson works for the European Union in Paris ."]
    source.write_text("\n".join(texts) + "\n")
    out = tmp_path / "out.jsonl"
    assert annotate_main([str(pipeline), str(source), str(out), "--docbin", str(tmp_path / "docs"), "--no-progress"]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    nlp = spacy.load(pipeline)
    for row, doc in zip(rows, nlp.pipe(texts)):
        assert [(e["start"], e["end"], e["label"], e["score"]) for e in row["entities"]] == [
            (e.start_char, e.end_char, e.label_, score_of(e)) for e in doc.ents]
        assert row["entities"], "the tiny pipeline finds entities here"
    docs = list(DocBin().from_disk(next((tmp_path / "docs").glob("*.spacy"))).get_docs(nlp.vocab))
    assert docs[0].spans["ner_candidates"].attrs["scores"][-1] == score_of(docs[0][0:2])


# --- item 7: truncated spans -----------------------------------------------------------

def test_truncated_spans_are_counted_per_run(tiny_llama, tmp_path, capsys):
    nlp = make_nlp(tiny_llama, max_length=12)
    nlp.initialize()
    nlp.to_disk(tmp_path / "pipeline")
    source = tmp_path / "in.txt"
    long = " ".join(["Peter Smith flew to London"] * 10)
    source.write_text(f"Peter Smith .\n{long}\n{long} again\n")
    out = tmp_path / "out.jsonl"
    assert annotate_main([str(tmp_path / "pipeline"), str(source), str(out), "--no-progress"]) == 0
    assert "2 spans cut at max_length" in " ".join(capsys.readouterr().out.split())
    assert Progress.load(out).truncated_spans == 2


# --- item 8: smaller ones --------------------------------------------------------------

def test_n_process_with_a_gpu_is_refused(base_pipeline, tmp_path, capsys):
    source = tmp_path / "in.txt"
    source.write_text("Peter Smith\n")
    out = tmp_path / "out.jsonl"
    assert annotate_main([str(base_pipeline), str(source), str(out), "--n-process", "2", "--gpu-id", "0"]) == 1
    assert "error: --n-process 2 with --gpu-id 0: worker processes cannot share one GPU" in capsys.readouterr().err
    assert not out.exists()

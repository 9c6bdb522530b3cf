"""The annotate command's review queue (--review-below P REVIEW.jsonl) on real files and a
real tiny pipeline with entity probabilities (scored_beam_ner): Prodigy tasks whose spans,
tokens, labels and scores agree with OUTPUT, least confident first, only the documents
scored below P; after a killed and resumed run, the queue of the whole OUTPUT, the same
as an uninterrupted run's with two processes; a pipeline without scores and a bad P
refused before anything is written.

The queue is built by the command's own process from the complete OUTPUT, whatever
annotated it; test_annotate and test_data_safety check that OUTPUT is the same in one
process, with two processes and on Ray (whose actors make OUTPUT's lines, scores and
candidates included, with the code that makes them in one process). With two processes,
a scored pipeline's scores and candidates come back from nlp.pipe's workers in
serialized Docs: that run is checked here."""
import json
from pathlib import Path

import pytest
import spacy
from spacy.training import Example
from spacy.util import fix_random_seed

import marker_components  # noqa: F401  (registers test_crash in this process)
from conftest import NER_MODEL, TRAIN, make_nlp
from spacy_llama_ner.annotate import main as annotate_main
from spacy_llama_ner.annotate.records import Progress
from test_annotate import annotate, read_jsonl, some_texts
from test_data_safety import run_cli

CODE = Path(marker_components.__file__)


@pytest.fixture(scope="module")
def scored_pipeline(tiny_llama, tmp_path_factory) -> Path:
    fix_random_seed(0)
    nlp = make_nlp(tiny_llama, with_ner=False)
    nlp.add_pipe("scored_beam_ner", name="ner", config={"beam_width": 4, "model": NER_MODEL, "threshold": 0.0})
    examples = [Example.from_dict(nlp.make_doc(t), {"entities": e}) for t, e in TRAIN]
    nlp.initialize(lambda: examples)
    optimizer = nlp.create_optimizer()
    for _ in range(12):
        nlp.update(examples, sgd=optimizer)
    path = tmp_path_factory.mktemp("review") / "pipeline"
    nlp.to_disk(path)
    return path


def write_input(path: Path, n: int = 30) -> None:
    """JSON Lines with an id and a meta field, an empty text, a blank line and a record with
    a "candidates" field of its own (a bad line for a scored pipeline): OUTPUT's line
    numbers are not INPUT's."""
    records = [{"id": f"doc{i}", "text": t, "meta": {"n": i}} for i, t in enumerate(some_texts(n, seed=11) + [""])]
    lines = [json.dumps(r) + "\n" for r in records]
    lines.insert(5, "\n")
    lines.insert(9, json.dumps({"text": "Peter Smith", "candidates": ["mine"]}) + "\n")
    path.write_text("".join(lines), encoding="utf-8")


def scores_of(record: dict) -> list:
    return [item["score"] for item in record["entities"]]


def check_task(task: dict, record: dict) -> None:
    """One review task against the OUTPUT record it comes from."""
    text = task["text"]
    assert text == record["text"]
    tokens = task["tokens"]
    assert [t["id"] for t in tokens] == list(range(len(tokens)))
    for token, following in zip(tokens, tokens[1:] + [None]):
        assert text[token["start"] : token["end"]] == token["text"]
        assert (following["start"] if following else len(text)) == token["end"] + token["ws"]
    for span, entity in zip(task["spans"], record["entities"], strict=True):
        assert text[span["start"] : span["end"]] == entity["text"]
        assert tokens[span["token_start"]]["start"] == span["start"]  # token_end is inclusive
        assert tokens[span["token_end"]]["end"] == span["end"]
        assert (span["start"], span["end"], span["label"], span["score"]) == (
            entity["start"], entity["end"], entity["label"], entity["score"])
    assert task["meta"]["candidates"] == record["candidates"]
    assert task["meta"]["score"] == min(scores_of(record))
    assert task["id"] == record["id"] and task["meta"]["n"] == record["meta"]["n"]


def test_the_review_queue_holds_the_documents_below_p_least_confident_first(scored_pipeline, tmp_path, capsys):
    source = tmp_path / "in.jsonl"
    write_input(source)
    out = tmp_path / "out.jsonl"
    assert annotate(scored_pipeline, source, out, "--skip-bad-lines") == 0
    assert f"{source}:10: skipped: already has a 'candidates' field" in capsys.readouterr().err
    records = read_jsonl(out)
    for record in records:
        entities = {(e["start"], e["end"], e["label"]) for e in record["entities"]}
        assert all((c["start"], c["end"], c["label"]) not in entities for c in record["candidates"])
    lowest = {number: min(scores_of(r)) for number, r in enumerate(records, 1) if scores_of(r)}
    levels = sorted(set(lowest.values()))
    assert len(levels) >= 3, levels
    below = levels[len(levels) // 2]  # one document's lowest score: not below P itself
    expected = sorted((score, number) for number, score in lowest.items() if score < below)
    assert expected and len(expected) < len(lowest)

    review, fresh = tmp_path / "review.jsonl", tmp_path / "fresh.jsonl"
    assert annotate(scored_pipeline, source, fresh, "--skip-bad-lines", "--review-below", repr(below), review) == 0
    assert fresh.read_bytes() == out.read_bytes()
    assert f"{len(expected)} documents with a score below {below}" in " ".join(capsys.readouterr().out.split())
    tasks = read_jsonl(review)
    assert [(t["meta"]["score"], t["meta"]["output_line"]) for t in tasks] == expected
    absent = [n for n, score in lowest.items() if score >= below]
    assert any(lowest[n] == below for n in absent) and any(records[n - 1]["entities"] for n in absent)
    for task in tasks:
        check_task(task, records[task["meta"]["output_line"] - 1])
    assert any(t["spans"] for t in tasks)

    # a finished OUTPUT: the queue is rebuilt from it, without annotating again
    again = tmp_path / "again.jsonl"
    assert annotate(scored_pipeline, source, out, "--skip-bad-lines", "--review-below", repr(below), again) == 0
    assert "already complete" in capsys.readouterr().out
    assert again.read_bytes() == review.read_bytes()


@pytest.mark.timeout(600)
def test_after_a_killed_and_resumed_run_the_queue_covers_the_whole_output(scored_pipeline, tmp_path, capsys):
    """Killed (at once, as SIGKILL does) at the 26th document with checkpoints every 3
    lines, before writing the queue; resumed: the queue holds OUTPUT's documents below P
    from the first run as well as from the second, and is the one an uninterrupted run
    with two processes writes."""
    pipeline = tmp_path / "pipeline"
    nlp = spacy.load(scored_pipeline)
    nlp.add_pipe("test_crash")
    nlp.to_disk(pipeline)
    source = tmp_path / "in.jsonl"
    texts = some_texts(40, seed=12)
    source.write_text("".join(json.dumps({"id": f"doc{i}", "text": t, "meta": {"n": i}}) + "\n"
                              for i, t in enumerate(texts)), encoding="utf-8")
    common = ["--code", CODE, "--batch-size", "4"]
    out, review = tmp_path / "out.jsonl", tmp_path / "review.jsonl"
    args = [pipeline, source, out, *common, "--checkpoint-every", "3", "--review-below", "0.5", review]
    killed = run_cli(*args, env={"ANNOTATE_TEST_CRASH_AT": texts[25]}, check=False)
    assert killed.returncode == 9 and not review.exists()
    saved = Progress.load(out)
    first_run = saved.documents  # OUTPUT's lines from the killed run: one per input line here
    assert 0 < first_run < 25 and saved.lines_done == first_run
    assert annotate(*args) == 0
    assert f"Resuming after input line {first_run}:" in capsys.readouterr().out

    records = read_jsonl(out)
    assert [r["text"] for r in records] == texts
    lowest = {number: min(scores_of(r)) for number, r in enumerate(records, 1) if scores_of(r)}
    expected = sorted((score, number) for number, score in lowest.items() if score < 0.5)
    assert min(n for _, n in expected) <= first_run < max(n for _, n in expected)  # from both runs
    tasks = read_jsonl(review)
    assert [(t["meta"]["score"], t["meta"]["output_line"]) for t in tasks] == expected
    for task in tasks:
        check_task(task, records[task["meta"]["output_line"] - 1])

    two, two_review = tmp_path / "two.jsonl", tmp_path / "review-two.jsonl"
    run_cli(pipeline, source, two, *common, "--n-process", "2", "--review-below", "0.5", two_review)
    assert two.read_bytes() == out.read_bytes()
    assert two_review.read_bytes() == review.read_bytes()

    # rerunning the finished command rebuilds the queue from the whole OUTPUT
    review.unlink()
    assert annotate(*args) == 0
    assert "already complete" in capsys.readouterr().out
    assert review.read_bytes() == two_review.read_bytes()


def test_a_pipeline_without_scores_is_refused_before_anything_is_written(tiny_llama, tmp_path, capsys):
    nlp = make_nlp(tiny_llama)  # spaCy's greedy ner
    nlp.initialize()
    nlp.to_disk(tmp_path / "pipeline")
    source = tmp_path / "in.txt"
    source.write_text("Peter Smith flew to London .\n")
    out, review = tmp_path / "out.jsonl", tmp_path / "review.jsonl"
    assert annotate(tmp_path / "pipeline", source, out, "--review-below", "0.5", review) == 1
    stderr = capsys.readouterr().err
    assert ("error: --review-below needs entity probabilities: Pipeline component 'ner' is greedy (beam_width = 1)"
            in stderr)
    assert "scored_beam_ner" in stderr
    assert sorted(tmp_path.iterdir()) == [source, tmp_path / "pipeline"]


def test_a_bad_p_is_named(scored_pipeline, tmp_path, capsys):
    source = tmp_path / "in.txt"
    source.write_text("Peter Smith\n")
    for value, shown in [("0", "0.0"), ("1.5", "1.5"), ("-0.2", "-0.2"), ("nan", "nan"), ("x", "'x'")]:
        args = [scored_pipeline, source, tmp_path / "out.jsonl", "--review-below", value, tmp_path / "review.jsonl"]
        assert annotate_main([*map(str, args), "--no-progress"]) == 1
        stderr = capsys.readouterr().err
        assert f"error: --review-below P: P must be a probability in (0, 1], got {shown}" in stderr, stderr
    assert sorted(tmp_path.iterdir()) == [source]

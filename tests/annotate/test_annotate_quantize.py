"""annotate --quantize int8 on a real tiny pipeline: the entities that nlp.pipe gives with the
transformer's quantize = "int8", not the float32 ones, in one process, with two worker
processes and on a local Ray cluster with two actors; refused with a GPU before anything is
written; an int8 run and a float32 run into the same OUTPUT are different arguments."""
import json

import pytest
import spacy

from spacy_llama_ner.annotate import main as annotate_main
from spacy_llama_ner.annotate.records import Progress
from test_annotate import pipeline_dir, read_jsonl, run_cli, some_texts  # noqa: F401  (pipeline_dir: a fixture)

INT8 = {"components": {"transformer": {"model": {"quantize": "int8"}}}}
# Several batches per worker and per actor. nlp.pipe gets the same batches: int8 scales each
# batch's activations by their largest value, so another batch changes a Doc's features.
BATCH = 16


def pipe_entities(pipeline, texts, config: dict) -> list:
    nlp = spacy.load(pipeline, config=config)
    return [[(e.start_char, e.end_char, e.label_) for e in doc.ents] for doc in nlp.pipe(texts, batch_size=BATCH)]


def output_entities(path) -> list:
    return [[(e["start"], e["end"], e["label"]) for e in row["entities"]] for row in read_jsonl(path)]


@pytest.mark.timeout(600)
def test_int8_gives_nlp_pipe_int8_entities_in_one_process_two_processes_and_on_ray(pipeline_dir, tmp_path):
    texts = some_texts(200, seed=5)
    source = tmp_path / "in.txt"
    source.write_text("\n".join(texts) + "\n", encoding="utf-8")
    expected = pipe_entities(pipeline_dir, texts, INT8)
    assert expected != pipe_entities(pipeline_dir, texts, {})  # a process that ignored --quantize would show
    for name, extra in {"one": [], "two": ["--n-process", "2"], "ray": ["--ray", "local", "--actors", "2"]}.items():
        out = tmp_path / f"{name}.jsonl"
        run_cli(pipeline_dir, source, out, "--batch-size", BATCH, "--quantize", "int8", *extra)
        assert output_entities(out) == expected, name


@pytest.mark.parametrize("gpu, named", [(["--gpu-id", "0"], "--gpu-id 0"), (["--ray", "local", "--gpu"], "--gpu")])
def test_int8_with_a_gpu_is_refused_in_one_line_before_anything_is_written(pipeline_dir, tmp_path, capsys, gpu, named):
    source = tmp_path / "in.txt"
    source.write_text("Peter Smith flew to London .\n")
    out = tmp_path / "out.jsonl"
    assert annotate_main([str(pipeline_dir), str(source), str(out), "--quantize", "int8", *gpu, "--no-progress"]) == 1
    error = capsys.readouterr().err
    assert error.startswith(f"error: --quantize int8 with {named}:")
    assert error.count("\n") == 1 and "CPU" in error
    assert list(tmp_path.iterdir()) == [source]


def test_an_int8_run_does_not_resume_a_float32_run(pipeline_dir, tmp_path, capsys):
    source = tmp_path / "in.txt"
    source.write_text("Peter Smith flew to London .\nMaria Johnson works in Paris .\n")
    out = tmp_path / "out.jsonl"
    args = [str(pipeline_dir), str(source), str(out), "--no-progress"]
    assert annotate_main(args) == 0
    assert annotate_main(args + ["--quantize", "int8"]) == 1
    assert "quantize: None then, 'int8' now" in capsys.readouterr().err
    # a progress file written before --quantize existed records a float32 run: it still resumes
    progress = Progress.path_for(out)
    saved = json.loads(progress.read_text())
    del saved["settings"]["quantize"]
    progress.write_text(json.dumps(saved))
    assert annotate_main(args) == 0
    assert "already complete" in capsys.readouterr().out

"""annotate --quantize int8 on a real tiny pipeline: refused with a GPU before anything is
written; an int8 run and a float32 run into the same OUTPUT are different arguments. That
an int8 run gives the entities nlp.pipe gives with the transformer's quantize = "int8",
not the float32 ones, in one process, with two worker processes and on a local Ray
cluster with two actors, test_annotate's two-processes-and-Ray test checks, with the
float32 runs (one Ray start for both)."""
import json

import pytest

from spacy_llama_ner.annotate import main as annotate_main
from spacy_llama_ner.annotate.records import Progress
from test_annotate import pipeline_dir  # noqa: F401  (a fixture)


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

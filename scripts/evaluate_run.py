"""Score a trained pipeline on a corpus and record speed, memory and size.

    python scripts/evaluate_run.py PIPELINE_DIR CORPUS.spacy OUTPUT.json [--gpu-id N]

Writes entity P/R/F (overall and per type), inference words per second (spaCy's
own measurement during `spacy evaluate`), peak RSS of this process, and the
parameter counts (total and trainable) of every component.
"""
import json
import resource
import sys
import time
from pathlib import Path

import spacy
from spacy.cli.evaluate import evaluate


def parameter_counts(nlp):
    """(total, trainable) parameters: torch modules' own counts, plus thinc's params."""
    total = trainable = 0
    for _, pipe in nlp.pipeline:
        for node in pipe.model.walk():
            for name in node.param_names:
                if node.has_param(name):
                    total += node.get_param(name).size
                    trainable += node.get_param(name).size
            for shim in node.shims:
                module = getattr(shim, "_model", None)
                if module is not None:
                    for p in module.parameters():
                        total += p.numel()
                        trainable += p.numel() if p.requires_grad else 0
    return total, trainable


def main(pipeline: str, corpus: str, output: str, *args: str) -> None:
    gpu_id = int(args[args.index("--gpu-id") + 1]) if "--gpu-id" in args else -1
    start = time.time()
    scores = evaluate(pipeline, corpus, use_gpu=gpu_id, silent=True)
    wall = time.time() - start
    peak_rss_mb = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    if gpu_id >= 0:
        spacy.require_gpu(gpu_id)
    total, trainable = parameter_counts(spacy.load(pipeline))
    result = {
        "pipeline": pipeline,
        "corpus": corpus,
        "ents_p": scores["ents_p"],
        "ents_r": scores["ents_r"],
        "ents_f": scores["ents_f"],
        "ents_per_type": scores["ents_per_type"],
        "words_per_second": round(scores["speed"]),
        "evaluate_wall_s": round(wall, 1),
        "peak_rss_mb": peak_rss_mb,
        "parameters_total": total,
        "parameters_trainable": trainable,
    }
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    Path(output).write_text(json.dumps(result, indent=2))
    print(f"{pipeline}: F1 {result['ents_f']:.3f}, {result['words_per_second']} words/s")


if __name__ == "__main__":
    main(*sys.argv[1:])

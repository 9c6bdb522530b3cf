"""Score a trained pipeline on a corpus and record speed, memory and size.

    python scripts/evaluate_run.py PIPELINE_DIR CORPUS.spacy OUTPUT.json [--gpu-id N]

Writes entity P/R/F (overall and per type), inference words per second (spaCy's
own measurement, as `spacy evaluate` makes it), peak RSS of this process, and the
parameter counts (total and trainable) of every component.
"""
import argparse
import json
import resource
import time
from pathlib import Path

import spacy
from spacy.training import Corpus
from spacy.util import fix_random_seed
from wasabi import msg


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


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("pipeline", type=Path)
    parser.add_argument("corpus", type=Path)
    parser.add_argument("output", type=Path)
    parser.add_argument("--gpu-id", type=int, default=-1, help="GPU to run on (-1: CPU)")
    args = parser.parse_args(argv)
    for what, path in (("pipeline", args.pipeline), ("corpus", args.corpus)):
        if not path.exists():
            msg.fail(f"{what} not found: {path.resolve()}", exits=1)
    if args.gpu_id >= 0:
        spacy.require_gpu(args.gpu_id)
    start = time.time()
    # what `spacy evaluate` does, with the pipeline loaded once for its scores and its size
    fix_random_seed()
    nlp = spacy.load(args.pipeline)
    scores = nlp.evaluate(list(Corpus(args.corpus)(nlp)))
    wall = time.time() - start
    total, trainable = parameter_counts(nlp)
    result = {
        "pipeline": str(args.pipeline),
        "corpus": str(args.corpus),
        "ents_p": scores["ents_p"],
        "ents_r": scores["ents_r"],
        "ents_f": scores["ents_f"],
        "ents_per_type": scores["ents_per_type"],
        "words_per_second": round(scores["speed"]),
        "evaluate_wall_s": round(wall, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "parameters_total": total,
        "parameters_trainable": trainable,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2))
    print(f"{args.pipeline}: F1 {result['ents_f']:.3f}, {result['words_per_second']} words/s")


if __name__ == "__main__":
    main()

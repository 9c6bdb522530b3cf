"""Score trained runs on a test corpus: accuracy, speed, memory and size.

    python scripts/evaluate.py CORPUS.spacy RUN_DIR [RUN_DIR ...] [--gpu-id N] [--record SETTING]

Each RUN_DIR is a training directory of scripts/train.py; its model-best is scored in a
process of its own (so each peak memory figure is its own) into RUN_DIR/test.json:
entity P/R/F (overall and per type), inference words per second (spaCy's own
measurement, as `spacy evaluate` makes it), peak RSS, and the parameter counts (total
and trainable). `--record SETTING` puts each run, with these scores, into the study's
summary results/runs.jsonl (scripts/runs.py).
"""
import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

from wasabi import msg

import runs


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


def score(pipeline: Path, corpus: Path, output: Path, gpu_id: int) -> None:
    """Score one pipeline into output (run in a process of its own)."""
    import spacy
    from spacy.training import Corpus
    from spacy.util import fix_random_seed

    if gpu_id >= 0:
        spacy.require_gpu(gpu_id)
    start = time.time()
    # what `spacy evaluate` does, with the pipeline loaded once for its scores and its size
    fix_random_seed()
    nlp = spacy.load(pipeline)
    scores = nlp.evaluate(list(Corpus(corpus)(nlp)))
    wall = time.time() - start
    total, trainable = parameter_counts(nlp)
    result = {
        "pipeline": str(pipeline),
        "corpus": str(corpus),
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
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(result, indent=2))
    print(f"{pipeline}: F1 {result['ents_f']:.3f}, {result['words_per_second']} words/s")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("corpus", type=Path)
    parser.add_argument("run_dirs", type=Path, nargs="+", metavar="RUN_DIR")
    parser.add_argument("--gpu-id", type=int, default=-1, help="GPU to run on (-1: CPU)")
    parser.add_argument("--record", choices=runs.SETTINGS, help="put the scored runs into results/runs.jsonl")
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)  # score one run, in this process
    args = parser.parse_args(argv)
    missing = [str(p) for p in [args.corpus] + [d / "model-best" for d in args.run_dirs] if not p.exists()]
    if missing:
        msg.fail(f"not found: {', '.join(missing)}", exits=1)
    if args.one:
        return score(args.run_dirs[0] / "model-best", args.corpus, args.run_dirs[0] / "test.json", args.gpu_id)
    for run_dir in args.run_dirs:
        subprocess.run([sys.executable, __file__, str(args.corpus), str(run_dir), "--gpu-id", str(args.gpu_id), "--one"],
                       check=True)
        if args.record:
            runs.record_dir(run_dir, args.record)
    if args.record:
        msg.good(f"Recorded {len(args.run_dirs)} scored run(s) in {runs.RUNS_FILE}")


if __name__ == "__main__":
    main()

"""Do the calibrated scores still hold under `annotate --quantize int8`? The calibrator is
fitted on float32 marginals; int8 moves the marginals a little.

    .venv/bin/python experiments/confidence/int8_scores.py CALIBRATED_PIPELINE TEST.spacy

CALIBRATED_PIPELINE: the output of `python -m spacy llama-ner calibrate`. The pipeline is
loaded as annotate loads it, as saved (float32) and with --quantize int8, and each runs
over fresh copies of the test docs. Printed per load: F1 and, for `ent._.score`, ECE,
Brier, AUROC and the precision and share kept at >= 0.9; then how far the int8 score of
an entity found by both moves from its float32 score.
"""
import argparse
from pathlib import Path

import numpy
from spacy.tokens import DocBin
from wasabi import msg

from spacy_llama_ner.annotate.pipeline import load_pipeline
from spacy_llama_ner.confidence.measures import entity_outcomes, summary


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("pipeline", type=Path)
    ap.add_argument("test", type=Path)
    args = ap.parse_args(argv)
    runs = {}
    for quantize in (None, "int8"):
        nlp = load_pipeline(str(args.pipeline), -1, quantize=quantize)
        gold = list(DocBin().from_disk(args.test).get_docs(nlp.vocab))
        msg.info(f"{quantize or 'float32'}: {len(gold):,} test docs")
        runs[quantize or "float32"] = entity_outcomes(nlp, gold)
    print("| weights | test F1 | entities | ECE | Brier | AUROC | >= 0.9: precision / share kept |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, o in runs.items():
        s = summary(o.score, o.correct, o.precision, (0.9,))
        k = s["kept"][0]
        print(f"| {name} | {o.prf['f'] * 100:.1f} | {s['n']:,} | {s['ece']:.4f} | {s['brier']:.4f} | {s['auroc']:.3f} | "
              f"{100 * k['precision']:.1f}% / {100 * k['share']:.1f}% |")
    keys = [{(d, t, lab): s for d, t, lab, s in zip(o.doc_index, o.texts, o.labels, o.score)} for o in runs.values()]
    both = keys[0].keys() & keys[1].keys()
    moved = numpy.abs(numpy.array([keys[1][k] - keys[0][k] for k in both]))
    print(f"\n{len(both):,} entities found by both: int8 score - float32 score, absolute: "
          f"median {numpy.median(moved):.4f}, 95th percentile {numpy.percentile(moved, 95):.4f}, max {moved.max():.4f}")


if __name__ == "__main__":
    main()

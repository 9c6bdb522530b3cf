"""How much of a small test set's ECE is sampling noise, from runs' saved outcomes
(measure.py --outcomes): the calibrator fitted on dev as measure.py fits it, then on test

- the ECE, with a 95% bootstrap interval over test documents;
- the ECE a perfectly calibrated score would show on the same entities: outcomes drawn
  right with probability equal to each entity's own score (median and 95th percentile of
  1,000 draws). An ECE inside that range is what the test set's size allows; a gap
  between dev and test precision shows as ECE above it;
- how unusual that gap is for the split: the share of 1,000 random re-splits of the same
  dev and test documents (their entities' outcomes as they are) whose precision gap is at
  least as wide. A split of one data set at random should put it well above 5%.

    .venv/bin/python experiments/confidence/ece_noise.py training/confidence/social-s*/outcomes.npz
"""
import sys
from pathlib import Path

import numpy

from spacy_llama_ner.confidence import Calibrator
from spacy_llama_ner.confidence.measures import expected_calibration_error

DRAWS = 1000


def noise(path: Path, seed: int = 0) -> dict:
    o = numpy.load(path)
    scores = Calibrator.fit(o["dev_raw"], o["dev_correct"], "isotonic").apply(o["test_raw"]).astype("float64")
    correct, docs = o["test_correct"], o["test_doc_index"]
    rng = numpy.random.default_rng(seed)
    by_doc = {d: numpy.flatnonzero(docs == d) for d in numpy.unique(docs)}
    keys = list(by_doc)
    boot = []
    for _ in range(DRAWS):
        idx = numpy.concatenate([by_doc[keys[k]] for k in rng.integers(0, len(keys), len(keys))])
        boot.append(expected_calibration_error(scores[idx], correct[idx]))
    ideal = [expected_calibration_error(scores, (rng.random(len(scores)) < scores).astype("float64")) for _ in range(DRAWS)]
    return {
        **resplit_gap(o, rng),
        "entities": len(scores), "dev_precision": float(o["dev_correct"].mean()), "test_precision": float(correct.mean()),
        "mean_score": float(scores.mean()), "ece": expected_calibration_error(scores, correct),
        "ece_95": numpy.percentile(boot, [2.5, 97.5]), "ideal_median": float(numpy.median(ideal)),
        "ideal_95th": float(numpy.percentile(ideal, 95)),
    }


def resplit_gap(o, rng) -> dict:
    """The dev - test precision gap, and the share of random re-splits of the same documents
    (as many dev documents as before) with a gap at least as wide."""
    per_doc = numpy.array([(o[f"{part}_correct"][o[f"{part}_doc_index"] == d].sum(), (o[f"{part}_doc_index"] == d).sum())
                           for part in ("dev", "test") for d in numpy.unique(o[f"{part}_doc_index"])], dtype="float64")
    n_dev = len(numpy.unique(o["dev_doc_index"]))
    gap = float(o["dev_correct"].mean() - o["test_correct"].mean())
    wider = 0
    for _ in range(DRAWS):
        order = rng.permutation(len(per_doc))
        dev, test = per_doc[order[:n_dev]].sum(0), per_doc[order[n_dev:]].sum(0)
        wider += abs(dev[0] / dev[1] - test[0] / test[1]) >= abs(gap) - 1e-12
    return {"precision_gap": gap, "resplits_as_wide": wider / DRAWS}


def main(paths) -> None:
    print("| run | test entities | dev / test precision | mean score (test) | ECE (95% over docs) | ECE if perfectly calibrated: median / 95th pct "
          "| re-splits with a precision gap as wide |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for path in map(Path, paths):
        r = noise(path)
        print(f"| {path.parent.name} | {r['entities']} | {100 * r['dev_precision']:.1f} / {100 * r['test_precision']:.1f} | "
              f"{r['mean_score']:.3f} | {r['ece']:.3f} ({r['ece_95'][0]:.3f}–{r['ece_95'][1]:.3f}) | "
              f"{r['ideal_median']:.3f} / {r['ideal_95th']:.3f} | {100 * r['resplits_as_wide']:.1f}% |")


if __name__ == "__main__":
    main(sys.argv[1:])

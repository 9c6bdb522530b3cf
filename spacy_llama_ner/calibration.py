"""How well entity probabilities are calibrated, and a temperature that fixes them.

Inputs are plain: per document, the beam's parses `[(probability, [(start, end, label)])]`
(EntityConfidence.beam_parses) and the gold entities as a set of (start, end, label)
token offsets. Everything here is numpy; plotting lives in experiments/confidence/.
"""
from typing import Dict, Iterable, List, Sequence, Set, Tuple

import numpy

from .confidence import beam_marginals

Entity = Tuple[int, int, str]
Parse = Tuple[float, List[Entity]]


def outcomes(
    parses: Sequence[Sequence[Parse]], gold: Sequence[Set[Entity]], temperature: float = 1.0
) -> Tuple[numpy.ndarray, numpy.ndarray]:
    """(scores, correct) over every candidate entity of every beam: its marginal
    probability at `temperature`, and whether it is a gold entity (1.0) or not (0.0)."""
    scores: List[float] = []
    correct: List[float] = []
    for doc_parses, doc_gold in zip(parses, gold):
        for ent, p in beam_marginals(doc_parses, temperature).items():
            scores.append(p)
            correct.append(1.0 if ent in doc_gold else 0.0)
    return numpy.asarray(scores, dtype="float64"), numpy.asarray(correct, dtype="float64")


def reliability(scores: numpy.ndarray, correct: numpy.ndarray, n_bins: int = 10) -> Dict[str, list]:
    """Equal-width bins over [0, 1]: per bin the count, mean score and accuracy
    (fraction correct); empty bins have count 0 and None for the means."""
    edges = numpy.linspace(0.0, 1.0, n_bins + 1)
    index = numpy.clip(numpy.digitize(scores, edges[1:-1], right=True), 0, n_bins - 1)
    counts, confidence, accuracy = [], [], []
    for b in range(n_bins):
        mask = index == b
        n = int(mask.sum())
        counts.append(n)
        confidence.append(float(scores[mask].mean()) if n else None)
        accuracy.append(float(correct[mask].mean()) if n else None)
    return {"edges": edges.tolist(), "count": counts, "confidence": confidence, "accuracy": accuracy}


def expected_calibration_error(scores: numpy.ndarray, correct: numpy.ndarray, n_bins: int = 10) -> float:
    """ECE: the count-weighted mean |accuracy - confidence| over equal-width bins."""
    if len(scores) == 0:
        return float("nan")
    bins = reliability(scores, correct, n_bins)
    total = 0.0
    for n, conf, acc in zip(bins["count"], bins["confidence"], bins["accuracy"]):
        if n:
            total += n * abs(acc - conf)
    return total / len(scores)


def precision_above(scores: numpy.ndarray, correct: numpy.ndarray, threshold: float) -> Dict[str, float]:
    """Precision and count of the candidates scored above `threshold` (strictly)."""
    mask = scores > threshold
    n = int(mask.sum())
    return {"threshold": threshold, "n": n, "precision": float(correct[mask].mean()) if n else float("nan")}


def pr_curve(
    scores: numpy.ndarray, correct: numpy.ndarray, n_gold: int, thresholds: Iterable[float]
) -> List[Dict[str, float]]:
    """Per threshold t, the candidates with probability >= t taken as entities:
    precision, recall (over all n_gold gold entities) and F1."""
    rows = []
    for t in thresholds:
        mask = scores >= t
        tp = float(correct[mask].sum())
        n = int(mask.sum())
        p = tp / n if n else float("nan")
        r = tp / n_gold if n_gold else float("nan")
        f = 2 * p * r / (p + r) if n and tp else 0.0
        rows.append({"threshold": float(t), "n": n, "precision": p, "recall": r, "f1": f})
    return rows


def negative_log_likelihood(scores: numpy.ndarray, correct: numpy.ndarray) -> float:
    """Mean binary cross-entropy of the candidates' probabilities against correctness."""
    p = numpy.clip(scores, 1e-7, 1 - 1e-7)
    return float(-(correct * numpy.log(p) + (1 - correct) * numpy.log(1 - p)).mean())


def fit_temperature(
    parses: Sequence[Sequence[Parse]],
    gold: Sequence[Set[Entity]],
    low: float = 0.05,
    high: float = 100.0,
    steps: int = 70,
) -> Tuple[float, Dict[str, float]]:
    """The temperature in [low, high] that minimizes the candidates' binary NLL
    (log-spaced grid, then a finer grid around the best point), with the NLL before
    (T = 1) and after; 1.0 when nothing beats T = 1."""
    def nll(t: float) -> float:
        return negative_log_likelihood(*outcomes(parses, gold, t))

    grid = numpy.geomspace(low, high, steps)
    losses = [nll(t) for t in grid]
    best = int(numpy.argmin(losses))
    lo, hi = grid[max(best - 1, 0)], grid[min(best + 1, steps - 1)]
    fine = numpy.geomspace(lo, hi, 21)
    fine_losses = [nll(t) for t in fine]
    k = int(numpy.argmin(fine_losses))
    t_best, nll_best, nll_one = float(fine[k]), float(fine_losses[k]), nll(1.0)
    if not nll_best < nll_one - 1e-9:  # no better than the beam's own probabilities: keep them
        t_best, nll_best = 1.0, nll_one
    return t_best, {"nll_t1": nll_one, "nll_fitted": nll_best}


def gold_words_docs(nlp, gold_docs) -> list:
    """Unannotated copies of `gold_docs` with the same tokens, so that predicted and
    gold entities compare by token offsets."""
    from spacy.tokens import Doc

    return [Doc(nlp.vocab, words=[t.text for t in g], spaces=[bool(t.whitespace_) for t in g]) for g in gold_docs]


def pipeline_parses(nlp, gold_docs, component: str = "ner_confidence", batch_size: int = 64):
    """Run `nlp` (all but `component`) over copies of gold_docs, then the beam of
    `component`: (predicted docs, per-doc beam parses, per-doc gold entity sets)."""
    conf = nlp.get_pipe(component)
    docs = list(nlp.pipe(gold_words_docs(nlp, gold_docs), disable=[component], batch_size=batch_size))
    parses = []
    for start in range(0, len(docs), batch_size):
        parses.extend(conf.beam_parses(docs[start : start + batch_size]))
    gold = [{(e.start, e.end, e.label_) for e in g.ents} for g in gold_docs]
    return docs, parses, gold


def fit_pipeline_temperature(nlp, gold_docs, component: str = "ner_confidence") -> Tuple[float, Dict[str, float]]:
    """Fit the temperature of `component` on annotated docs (a dev set) and set it on the
    component; nlp.to_disk then saves it (a temperature given in the config wins on load)."""
    _, parses, gold = pipeline_parses(nlp, gold_docs, component)
    temperature, info = fit_temperature(parses, gold)
    nlp.get_pipe(component).temperature = temperature
    return temperature, info


def main(argv=None) -> None:
    """python -m spacy_llama_ner.calibration PIPELINE DEV.spacy OUTPUT: fit the
    ner_confidence temperature of PIPELINE on DEV.spacy and save the pipeline to OUTPUT."""
    import argparse

    import spacy
    from spacy.tokens import DocBin

    ap = argparse.ArgumentParser(prog="python -m spacy_llama_ner.calibration", description=main.__doc__)
    ap.add_argument("pipeline", help="a trained pipeline with ner_confidence (configs/ner_beam.cfg)")
    ap.add_argument("dev", help="annotated docs (.spacy) the temperature is fitted on: not the test set")
    ap.add_argument("output", help="where the pipeline with the fitted temperature is saved")
    ap.add_argument("--component", default="ner_confidence")
    ap.add_argument("--limit", type=int, default=0, help="first N docs only (0: all)")
    args = ap.parse_args(argv)
    nlp = spacy.load(args.pipeline)
    from .scores import require_scores

    require_scores(nlp)
    docs = list(DocBin().from_disk(args.dev).get_docs(nlp.vocab))
    if args.limit:
        docs = docs[: args.limit]
    temperature, info = fit_pipeline_temperature(nlp, docs, args.component)
    nlp.to_disk(args.output)
    print(
        f"temperature {temperature:.3f} fitted on {len(docs)} docs of {args.dev} "
        f"(candidate NLL {info['nll_t1']:.4f} at T=1, {info['nll_fitted']:.4f} fitted); saved to {args.output}"
    )


if __name__ == "__main__":
    main()

"""How good entity probabilities are, measured on what users read: the entities of
doc.ents, each right (exact span and label in the gold data) or wrong.

`entity_outcomes` runs a pipeline over fresh, unannotated copies of gold docs and
returns per predicted entity its raw and calibrated score, whether it is right, its
label and its doc; the functions below score those arrays with numpy and scikit-learn.
"""
from dataclasses import dataclass
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import numpy
from spacy.scorer import Scorer
from spacy.tokens import Doc
from spacy.training import Example

from .spans import CANDIDATES_KEY


@dataclass
class Outcomes:
    """One row per scored entity of doc.ents (preset ones left out)."""

    raw: numpy.ndarray      # the raw score (the beam's marginal, or spancat's probability)
    score: numpy.ndarray    # what ent._.score gives (calibrated where the pipeline has a calibrator)
    correct: numpy.ndarray  # 1.0: exact span and label are gold
    labels: List[str]
    texts: List[str]
    doc_index: numpy.ndarray
    n_docs: int
    prf: Dict[str, float]   # spaCy's entity precision, recall, F1 of the same docs

    @property
    def entities(self) -> List[Tuple[str, str]]:
        """(text, label) of each entity, as a calibrator fitted with the training data reads them."""
        return list(zip(self.texts, self.labels))

    @property
    def precision(self) -> float:
        return float(self.correct.mean()) if len(self.correct) else float("nan")


def fresh_copies(vocab, gold_docs: Sequence[Doc]) -> List[Doc]:
    """The gold docs' words without any annotation: nothing for the NER to take as given."""
    return [Doc(vocab, words=[t.text for t in g], spaces=[bool(t.whitespace_) for t in g]) for g in gold_docs]


def entity_outcomes(nlp, gold_docs: Sequence[Doc], batch_size: int = 64, progress=None) -> Outcomes:
    """Run `nlp` over fresh copies of `gold_docs` and collect the outcome of every scored
    entity of doc.ents. `progress`: a callable given the number of docs done so far."""
    predicted = nlp.pipe(fresh_copies(nlp.vocab, gold_docs), batch_size=batch_size)
    return outcomes_of(predicted, gold_docs, progress)


def outcomes_of(predicted: Iterable[Doc], gold_docs: Sequence[Doc], progress=None) -> Outcomes:
    """The outcome of every scored entity of the predicted docs' doc.ents against the gold docs."""
    raw, score, correct, labels, texts, doc_index, examples = [], [], [], [], [], [], []
    for i, (doc, gold) in enumerate(zip(predicted, gold_docs)):
        examples.append(Example(doc, gold))
        gold_ents = {(e.start, e.end, e.label_) for e in gold.ents}
        group = doc.spans[CANDIDATES_KEY]
        by_span = {(s.start, s.end, s.label_): k for k, s in enumerate(group)}
        for ent in doc.ents:
            k = by_span[(ent.start, ent.end, ent.label_)]
            if group.attrs["preset"][k]:
                continue
            raw.append(float(group.attrs["raw_scores"][k]))
            score.append(float(group.attrs["scores"][k]))
            correct.append(1.0 if (ent.start, ent.end, ent.label_) in gold_ents else 0.0)
            labels.append(ent.label_)
            texts.append(ent.text)
            doc_index.append(i)
        if progress is not None:
            progress(i + 1)
    prf = Scorer.score_spans(examples, "ents")
    return Outcomes(
        numpy.asarray(raw), numpy.asarray(score), numpy.asarray(correct), labels, texts,
        numpy.asarray(doc_index, dtype="int64"), len(examples),
        {"p": prf["ents_p"], "r": prf["ents_r"], "f": prf["ents_f"]},
    )


def equal_mass_bins(scores: numpy.ndarray, n_bins: int) -> List[numpy.ndarray]:
    """Indices of `scores` in n_bins bins of (nearly) equal count, by ascending score."""
    order = numpy.argsort(scores, kind="stable")
    return [b for b in numpy.array_split(order, min(n_bins, len(order))) if len(b)]


def expected_calibration_error(scores: numpy.ndarray, correct: numpy.ndarray, n_bins: int = 15) -> float:
    """ECE over equal-mass bins: the count-weighted mean |accuracy - mean score| per bin."""
    if len(scores) == 0:
        return float("nan")
    return float(sum(len(b) * abs(correct[b].mean() - scores[b].mean()) for b in equal_mass_bins(scores, n_bins)) / len(scores))


def brier(scores: numpy.ndarray, correct: numpy.ndarray) -> float:
    return float(numpy.mean((scores - correct) ** 2))


def auroc(scores: numpy.ndarray, correct: numpy.ndarray) -> float:
    """How well the score ranks right entities above wrong ones (0.5: not at all)."""
    from sklearn.metrics import roc_auc_score

    if len(set(correct.tolist())) < 2:
        return float("nan")
    return float(roc_auc_score(correct, scores))


def kept_at(scores: numpy.ndarray, correct: numpy.ndarray, threshold: float) -> Dict[str, float]:
    """Entities with score >= threshold: their precision and the share of all entities kept."""
    mask = scores >= threshold
    n = int(mask.sum())
    return {
        "threshold": threshold, "n": n, "share": n / len(scores) if len(scores) else float("nan"),
        "precision": float(correct[mask].mean()) if n else float("nan"),
    }


def summary(scores: numpy.ndarray, correct: numpy.ndarray, constant: float,
            thresholds: Sequence[float] = (0.5, 0.9, 0.99)) -> Dict[str, object]:
    """ECE, Brier and AUROC of the scores, the same for a constant score (e.g. dev
    precision: well calibrated on average, no ranking), and precision kept per threshold."""
    flat = numpy.full_like(scores, constant, dtype="float64")
    return {
        "n": int(len(scores)),
        "precision": float(correct.mean()) if len(correct) else float("nan"),
        "ece": expected_calibration_error(scores, correct),
        "brier": brier(scores, correct),
        "auroc": auroc(scores, correct),
        "constant": {"value": constant, "ece": expected_calibration_error(flat, correct),
                     "brier": brier(flat, correct), "auroc": auroc(flat, correct)},
        "kept": [kept_at(scores, correct, t) for t in thresholds],
    }


def reliability(scores: numpy.ndarray, correct: numpy.ndarray, doc_index: numpy.ndarray, n_bins: int = 10,
                n_boot: int = 1000, seed: int = 0) -> List[Dict[str, Optional[float]]]:
    """Equal-mass bins: per bin the mean score, the accuracy and its 95% interval from a
    bootstrap over documents (entities of one doc are resampled together)."""
    rng = numpy.random.default_rng(seed)
    docs = numpy.unique(doc_index)
    rows = []
    for b in equal_mass_bins(scores, n_bins):
        by_doc = {d: [] for d in numpy.unique(doc_index[b])}
        for k in b:
            by_doc[doc_index[k]].append(k)
        hits = numpy.asarray([correct[v].sum() for v in by_doc.values()])
        counts = numpy.asarray([len(v) for v in by_doc.values()])
        # resample the documents: a doc absent from this bin adds nothing
        weights = rng.multinomial(len(docs), numpy.full(len(docs), 1 / len(docs)), size=n_boot)
        doc_pos = numpy.searchsorted(docs, list(by_doc))
        w = weights[:, doc_pos]
        n = (w * counts).sum(1)
        acc = numpy.where(n > 0, (w * hits).sum(1) / numpy.maximum(n, 1), numpy.nan)
        low, high = numpy.nanpercentile(acc, [2.5, 97.5])
        rows.append({"n": int(len(b)), "score": float(scores[b].mean()), "accuracy": float(correct[b].mean()),
                     "low": float(low), "high": float(high)})
    return rows

"""Calibrators compared on runs' saved outcomes (measure.py --outcomes), label or not.

    .venv/bin/python experiments/confidence/compare_calibrators.py training/confidence/full-s0/outcomes.npz [MORE.npz ...]

Chosen on dev: 5-fold cross-validation over dev_calibrate's documents (GroupKFold), then
each fitted on all of dev_calibrate and scored on test. Calibrators: isotonic and Platt on
the raw score (what `calibrate` offers), the same per label (isotonic per label; Platt
with a label offset and slope), and where the outcomes say which entities occur in the
training data (measure.py --train), `calibrate --train`'s: one curve for those, one for
the rest; and that Platt form with the entity's length in words added (tried, not
adopted). With several runs (the beam and spancat designs), the dev columns are what the
designs are chosen by; the run is named by its folder.
"""
import sys
from pathlib import Path

import numpy
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold

from spacy_llama_ner.confidence.calibrator import CEILING, FLOOR, Calibrator, _logit
from spacy_llama_ner.confidence.measures import summary

KINDS = ("isotonic", "platt", "isotonic per label", "platt with label")
SEEN_KINDS = ("isotonic, seen or not", "platt, seen or not")  # calibrate --train's, as it fits them
# tried against the recipe by a rule written before its result, and rejected on dev (README)
WITH_LENGTH = "platt, seen or not, with length"


def features(raw, labels, all_labels, with_label):
    x = [_logit(raw)[:, None]]
    if with_label:
        onehot = numpy.stack([(labels == label).astype(float) for label in all_labels], 1)
        x += [onehot, onehot * _logit(raw)[:, None]]
    return numpy.concatenate(x, 1)


def fit_seen(kind, raw, correct, entities, training):
    """calibrate --train's calibrator: a function (raw, entities) -> probability."""
    calibrator = Calibrator.fit(raw, correct, kind.split(",")[0], entities=entities, training_entities=training)
    return calibrator.apply


def fit_with_length(raw, correct, entities, training):
    """Platt per seen group plus log(entity length in words), as one logistic regression:
    a function (raw, entities) -> probability."""
    def x(r, ents):
        seen = numpy.array([e in training for e in ents], dtype="float64")
        words = numpy.array([len(text.split()) for text, _ in ents], dtype="float64")
        return numpy.stack([_logit(r), seen, seen * _logit(r), numpy.log(numpy.maximum(words, 1))], 1)

    model = LogisticRegression(C=1e6, max_iter=1000).fit(x(raw, entities), correct)
    return lambda r, ents: model.predict_proba(x(r, ents))[:, 1]


def fit(kind, raw, correct, labels, all_labels):
    """A function (raw, labels) -> probability, fitted on the given outcomes."""
    def isotonic(r, y):
        return IsotonicRegression(y_min=FLOOR, y_max=CEILING, out_of_bounds="clip").fit(r, y)

    if kind == "isotonic":
        model = isotonic(raw, correct)
        return lambda r, lab: model.predict(r)
    if kind == "isotonic per label":
        # a label missing from the fitted outcomes (a rare one, in a cross-validation fold) gets the pooled curve
        pooled = isotonic(raw, correct)
        models = {label: isotonic(raw[labels == label], correct[labels == label]) for label in set(labels.tolist())}

        def apply(r, lab):
            out = numpy.zeros(len(r))
            for label in set(lab.tolist()):
                out[lab == label] = models.get(label, pooled).predict(r[lab == label])
            return out
        return apply
    with_label = kind == "platt with label"
    model = LogisticRegression(C=10.0 if with_label else 1e6, max_iter=1000)
    model.fit(features(raw, labels, all_labels, with_label), correct)
    return lambda r, lab: model.predict_proba(features(r, lab, all_labels, with_label))[:, 1]


def kept(s):
    k = s["kept"][0]
    return f"{100 * k['precision']:.1f}% / {100 * k['share']:.1f}%"


def measures(path) -> dict:
    """{calibrator: (dev summary cross-validated over documents, test summary)} for one run."""
    d = numpy.load(path)
    raw, correct, labels, docs = d["dev_raw"], d["dev_correct"], d["dev_labels"], d["dev_doc_index"]
    all_labels = sorted(set(labels.tolist()))
    precision = float(correct.mean())
    out = {}
    folds = list(GroupKFold(5).split(raw, correct, docs))
    for kind in KINDS:
        cv = numpy.zeros(len(raw))
        for train, held in folds:
            cv[held] = fit(kind, raw[train], correct[train], labels[train], all_labels)(raw[held], labels[held])
        test = fit(kind, raw, correct, labels, all_labels)(d["test_raw"], d["test_labels"])
        out[kind] = (summary(cv, correct, precision, (0.9,)), summary(test, d["test_correct"], precision, (0.9,)))
    if "dev_seen" in d.files:
        dev_ents, test_ents = (list(zip(d[f"{part}_texts"].tolist(), d[f"{part}_labels"].tolist())) for part in ("dev", "test"))
        # the training data's entities, as far as these outcomes can tell: those marked seen
        training = {e for part, ents in (("dev", dev_ents), ("test", test_ents)) for e, s in zip(ents, d[f"{part}_seen"]) if s}
        for kind in (*SEEN_KINDS, WITH_LENGTH):
            fitter = fit_with_length if kind == WITH_LENGTH else lambda *a: fit_seen(kind, *a)
            cv = numpy.zeros(len(raw))
            for train, held in folds:
                cv[held] = fitter(raw[train], correct[train], [dev_ents[i] for i in train], training)(
                    raw[held], [dev_ents[i] for i in held])
            test = fitter(raw, correct, dev_ents, training)(d["test_raw"], test_ents)
            out[kind] = (summary(cv, correct, precision, (0.9,)), summary(test, d["test_correct"], precision, (0.9,)))
    return out


def main(paths):
    print("| run | calibrator | dev (5-fold over documents): ECE / Brier / AUROC | dev >= 0.9: precision / kept "
          "| test: ECE / Brier / AUROC | test >= 0.9: precision / kept |")
    print("|---|---|---|---|---|---|")
    for path in paths:
        for kind, (s, t) in measures(path).items():
            print(f"| {Path(path).parent.name} | {kind} | {s['ece']:.4f} / {s['brier']:.4f} / {s['auroc']:.3f} | {kept(s)} | "
                  f"{t['ece']:.4f} / {t['brier']:.4f} / {t['auroc']:.3f} | {kept(t)} |", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])

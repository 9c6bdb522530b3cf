"""A calibrator of entity scores: maps the raw score of an entity in doc.ents (the beam's
marginal, or spancat's probability) to the probability that it is exactly right (span
and label), as measured on a dev set.

Fitted with scikit-learn (isotonic regression on the score, or Platt scaling: logistic
regression on logit(score)); what is saved is plain JSON (the isotonic curve's points, or
Platt's two numbers), applied with numpy, so loading a pipeline needs no scikit-learn.

Given the training data's entities, it fits one curve for the entities whose exact text
and label occur there ("seen") and one for the rest: a model is right far more often on
what it has seen (CoNLL-2003 dev: 98% against 87%), and a test set with fewer seen
entities than dev (CoNLL-2003 test: 52% against dev's 66%) is then scored lower, as it
should be, where one curve would carry dev's precision over. The entities are saved with it.
"""
import json
import math
from pathlib import Path
from typing import Dict, Iterable, Optional, Sequence, Tuple

import numpy

CALIBRATOR_FILE = "calibrator.json"
METHODS = ("isotonic", "platt")
GROUPS = ("seen", "unseen")  # the entity's (text, label) is, or is not, in the training data
# a calibrated score is never exactly 0 or 1: a dev set of finite size cannot show that
FLOOR, CEILING = 0.001, 0.999

Curve = Dict[str, list]  # isotonic: {"x": [...], "y": [...]}; Platt: {"a": [slope], "b": [offset]}
TextLabel = Tuple[str, str]


class CalibratorFileError(ValueError):
    """A saved calibrator cannot be read; names the file and what is wrong."""

    def __init__(self, where, reason: str):
        super().__init__(f"Entity score calibrator {where}: {reason}. Refit it with "
                         "`python -m spacy llama-ner calibrate PIPELINE DEV.spacy OUTPUT`.")


def _logit(p: numpy.ndarray) -> numpy.ndarray:
    p = numpy.clip(p, 1e-6, 1 - 1e-6)
    return numpy.log(p) - numpy.log1p(-p)


def training_entities(docs) -> set:
    """The (text, label) of every gold entity of the training docs: the entities a
    calibrator fitted with the training data calls seen."""
    return {(ent.text, ent.label_) for doc in docs for ent in doc.ents}


def fit_curve(method: str, scores: numpy.ndarray, correct: numpy.ndarray) -> Curve:
    if len(scores) < 2 or len(set(correct.tolist())) < 2:
        found = "none" if not len(scores) else f"{len(scores)}, {'all right' if correct.all() else 'all wrong'}"
        raise ValueError(f"cannot fit a calibrator on the entities the pipeline predicts there ({found}): it needs "
                         "right and wrong ones; use a larger dev set, or a pipeline trained longer")
    if method == "isotonic":
        from sklearn.isotonic import IsotonicRegression

        iso = IsotonicRegression(y_min=FLOOR, y_max=CEILING, out_of_bounds="clip").fit(scores, correct)
        return {"x": iso.X_thresholds_.tolist(), "y": iso.y_thresholds_.tolist()}
    from sklearn.linear_model import LogisticRegression

    lr = LogisticRegression(C=1e6).fit(_logit(scores)[:, None], correct)
    return {"a": [float(lr.coef_[0, 0])], "b": [float(lr.intercept_[0])]}


def apply_curve(method: str, curve: Curve, scores: numpy.ndarray) -> numpy.ndarray:
    if method == "isotonic":
        return numpy.interp(scores, curve["x"], curve["y"])
    return 1.0 / (1.0 + numpy.exp(-(curve["a"][0] * _logit(scores) + curve["b"][0])))


class Calibrator:
    """score -> calibrated probability: one curve (`params`), or with `training_entities`
    one per group of GROUPS (`by_seen`). `info` says what it was fitted on."""

    def __init__(self, method: str, params: Optional[Curve] = None, info: Optional[dict] = None, *,
                 by_seen: Optional[Dict[str, Curve]] = None, training_entities: Optional[Iterable[TextLabel]] = None):
        if (params is None) == (by_seen is None) or (by_seen is None) != (training_entities is None):
            raise ValueError("a Calibrator has either params, or by_seen with training_entities")
        self.method = method
        self.params = params
        self.by_seen = by_seen
        self.training_entities = None if training_entities is None else frozenset(map(tuple, training_entities))
        self.info = info or {}

    def seen(self, entities: Sequence[TextLabel]) -> numpy.ndarray:
        """Whether each (text, label) occurs in the training data."""
        return numpy.asarray([tuple(e) in self.training_entities for e in entities], dtype=bool)

    @classmethod
    def fit(cls, scores: Sequence[float], correct: Sequence[float], method: str = "isotonic",
            info: Optional[dict] = None, *, entities: Optional[Sequence[TextLabel]] = None,
            training_entities: Optional[Iterable[TextLabel]] = None) -> "Calibrator":
        """Fit on the raw scores of predicted entities and whether each was right (1/0);
        with `training_entities` (the (text, label) pairs of the training data), one curve
        per group, which needs the predicted `entities` as (text, label) too. A group
        without both right and wrong entities gets the curve of all of them, and
        `info["pooled"]` names it."""
        if method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {method!r}")
        scores = numpy.asarray(scores, dtype="float64")
        correct = numpy.asarray(correct, dtype="float64")
        pooled = fit_curve(method, scores, correct)
        if training_entities is None:
            return cls(method, pooled, info)
        calibrator = cls(method, info=dict(info or {}), by_seen={}, training_entities=training_entities)
        seen = calibrator.seen(entities)
        for group, mask in zip(GROUPS, (seen, ~seen)):
            try:
                calibrator.by_seen[group] = fit_curve(method, scores[mask], correct[mask])
            except ValueError:  # too few, or all right or all wrong: that group gets the curve of all entities
                calibrator.by_seen[group] = pooled
                calibrator.info.setdefault("pooled", []).append(group)
        return calibrator

    def apply(self, scores: Sequence[float], entities: Optional[Sequence[TextLabel]] = None) -> numpy.ndarray:
        """Calibrated probabilities of `scores`; a calibrator fitted with the training data's
        entities needs the scored `entities` as (text, label)."""
        scores = numpy.asarray(scores, dtype="float64")
        if self.by_seen is None:
            out = apply_curve(self.method, self.params, scores)
        else:
            if entities is None or len(entities) != len(scores):
                raise ValueError("this calibrator tells entities seen in training from the rest: "
                                 "pass the (text, label) of each scored entity")
            seen = self.seen(entities)
            out = numpy.where(seen, apply_curve(self.method, self.by_seen["seen"], scores),
                              apply_curve(self.method, self.by_seen["unseen"], scores))
        return numpy.clip(out, FLOOR, CEILING).astype("float32")

    # ------------------------------------------------------------------ saving
    def to_dict(self) -> dict:
        if self.by_seen is None:
            return {"method": self.method, "params": self.params, "info": self.info}
        return {"method": self.method, "by_seen": self.by_seen,
                "training_entities": sorted(map(list, self.training_entities)), "info": self.info}

    @classmethod
    def from_dict(cls, data, where) -> "Calibrator":
        if not isinstance(data, dict) or data.get("method") not in METHODS:
            got = data.get("method") if isinstance(data, dict) else type(data).__name__
            raise CalibratorFileError(where, f"'method' must be one of {list(METHODS)}, got {got!r}")
        method, info = data["method"], data.get("info") or {}
        if "by_seen" not in data:
            return cls(method, _checked_curve(method, data.get("params"), "'params'", where), info)
        by_seen = data["by_seen"]
        if not isinstance(by_seen, dict) or sorted(by_seen) != sorted(GROUPS):
            raise CalibratorFileError(where, f"'by_seen' must hold the curves {list(GROUPS)}")
        entities = data.get("training_entities")
        if not isinstance(entities, list) or not all(
                isinstance(e, list) and len(e) == 2 and all(isinstance(v, str) for v in e) for e in entities):
            raise CalibratorFileError(where, "'training_entities' must be a list of [text, label] pairs")
        curves = {g: _checked_curve(method, by_seen[g], f"'by_seen' '{g}'", where) for g in GROUPS}
        return cls(method, info=info, by_seen=curves, training_entities=entities)

    def to_disk(self, path: Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=1), encoding="utf8")

    @classmethod
    def from_disk(cls, path: Path) -> "Calibrator":
        try:
            data = json.loads(Path(path).read_text(encoding="utf8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise CalibratorFileError(path, f"not readable JSON ({err})") from None
        return cls.from_dict(data, path)


def _checked_curve(method: str, curve, name: str, where) -> Curve:
    keys = ("x", "y") if method == "isotonic" else ("a", "b")
    if not isinstance(curve, dict) or any(not isinstance(curve.get(k), list) for k in keys):
        raise CalibratorFileError(where, f"{name} must hold the lists {list(keys)}")
    values = [v for k in keys for v in curve[k]]
    if not values or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in values):
        raise CalibratorFileError(where, f"{name} {list(keys)} must be non-empty lists of finite numbers")
    if method == "isotonic":
        x, y = curve["x"], curve["y"]
        if len(x) != len(y) or any(b < a for a, b in zip(x, x[1:])) or not all(0.0 <= v <= 1.0 for v in y):
            raise CalibratorFileError(where, "isotonic 'x' must be increasing and as long as 'y', 'y' in [0, 1]")
    return curve

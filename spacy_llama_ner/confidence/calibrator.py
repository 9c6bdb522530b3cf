"""A calibrator of entity scores: maps the raw score of an entity in doc.ents (the beam's
marginal, or spancat's probability) to the probability that it is exactly right (span
and label), as measured on a dev set.

Fitted with scikit-learn (isotonic regression on the score, or Platt scaling: logistic
regression on logit(score)); what is saved is plain JSON (the isotonic curve's points, or
Platt's two numbers), applied with numpy, so loading a pipeline needs no scikit-learn.
"""
import json
import math
from pathlib import Path
from typing import Dict, Optional, Sequence

import numpy

CALIBRATOR_FILE = "calibrator.json"
METHODS = ("isotonic", "platt")
# a calibrated score is never exactly 0 or 1: a dev set of finite size cannot show that
FLOOR, CEILING = 0.001, 0.999


class CalibratorFileError(ValueError):
    """A saved calibrator cannot be read; names the file and what is wrong."""

    def __init__(self, where, reason: str):
        super().__init__(f"Entity score calibrator {where}: {reason}. Refit it with "
                         "`python -m spacy llama-ner calibrate PIPELINE DEV.spacy OUTPUT`.")


def _logit(p: numpy.ndarray) -> numpy.ndarray:
    p = numpy.clip(p, 1e-6, 1 - 1e-6)
    return numpy.log(p) - numpy.log1p(-p)


class Calibrator:
    """score -> calibrated probability; `info` says what it was fitted on."""

    def __init__(self, method: str, params: Dict[str, list], info: Optional[dict] = None):
        self.method = method
        self.params = params
        self.info = info or {}

    @classmethod
    def fit(cls, scores: Sequence[float], correct: Sequence[float], method: str = "isotonic",
            info: Optional[dict] = None) -> "Calibrator":
        """Fit on the raw scores of predicted entities and whether each was right (1/0)."""
        if method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {method!r}")
        scores = numpy.asarray(scores, dtype="float64")
        correct = numpy.asarray(correct, dtype="float64")
        if len(scores) < 2 or len(set(correct.tolist())) < 2:
            found = "none" if not len(scores) else f"{len(scores)}, {'all right' if correct.all() else 'all wrong'}"
            raise ValueError(
                f"cannot fit a calibrator on the entities the pipeline predicts there ({found}): it needs "
                "right and wrong ones; use a larger dev set, or a pipeline trained longer"
            )
        if method == "isotonic":
            from sklearn.isotonic import IsotonicRegression

            iso = IsotonicRegression(y_min=FLOOR, y_max=CEILING, out_of_bounds="clip").fit(scores, correct)
            params = {"x": iso.X_thresholds_.tolist(), "y": iso.y_thresholds_.tolist()}
        else:
            from sklearn.linear_model import LogisticRegression

            lr = LogisticRegression(C=1e6).fit(_logit(scores)[:, None], correct)
            params = {"a": [float(lr.coef_[0, 0])], "b": [float(lr.intercept_[0])]}
        return cls(method, params, info)

    def apply(self, scores: Sequence[float], labels: Optional[Sequence[str]] = None) -> numpy.ndarray:
        scores = numpy.asarray(scores, dtype="float64")
        if self.method == "isotonic":
            out = numpy.interp(scores, self.params["x"], self.params["y"])
        else:
            z = self.params["a"][0] * _logit(scores) + self.params["b"][0]
            out = 1.0 / (1.0 + numpy.exp(-z))
        return numpy.clip(out, FLOOR, CEILING).astype("float32")

    # ------------------------------------------------------------------ saving
    def to_dict(self) -> dict:
        return {"method": self.method, "params": self.params, "info": self.info}

    @classmethod
    def from_dict(cls, data, where) -> "Calibrator":
        if not isinstance(data, dict) or data.get("method") not in METHODS:
            got = data.get("method") if isinstance(data, dict) else type(data).__name__
            raise CalibratorFileError(where, f"'method' must be one of {list(METHODS)}, got {got!r}")
        params = data.get("params")
        keys = ("x", "y") if data["method"] == "isotonic" else ("a", "b")
        if not isinstance(params, dict) or any(not isinstance(params.get(k), list) for k in keys):
            raise CalibratorFileError(where, f"'params' must hold the lists {list(keys)}")
        values = [v for k in keys for v in params[k]]
        if not values or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in values):
            raise CalibratorFileError(where, f"'params' {list(keys)} must be non-empty lists of finite numbers")
        if data["method"] == "isotonic":
            x, y = params["x"], params["y"]
            if len(x) != len(y) or any(b < a for a, b in zip(x, x[1:])) or not all(0.0 <= v <= 1.0 for v in y):
                raise CalibratorFileError(where, "isotonic 'x' must be increasing and as long as 'y', 'y' in [0, 1]")
        return cls(data["method"], params, data.get("info") or {})

    def to_disk(self, path: Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=1), encoding="utf8")

    @classmethod
    def from_disk(cls, path: Path) -> "Calibrator":
        try:
            data = json.loads(Path(path).read_text(encoding="utf8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise CalibratorFileError(path, f"not readable JSON ({err})") from None
        return cls.from_dict(data, path)

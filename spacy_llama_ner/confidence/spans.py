"""Where entity probabilities live on a Doc, and how users read them.

Convention (spancat's): `doc.spans[CANDIDATES_KEY]` holds the scored entities (every
entity of `doc.ents` and the beam's other candidates above the component's threshold),
with arrays aligned to it in `attrs`: "scores" (calibrated when the pipeline has a
calibrator, else the beam's marginals), "raw_scores" (the beam's marginals) and
"preset" (entities set by an earlier component, which the model did not score: NaN).
All survive DocBin and Doc.to_bytes.

    for ent in doc.ents:
        print(ent.text, ent.label_, ent._.score, ent._.raw_score)

`Span._.score` is None when the doc has no score for that exact span and label (a
pipeline without scores, or an entity preset upstream).
"""
import math
from typing import Dict, Optional, Tuple

from spacy.tokens import Span

CANDIDATES_KEY = "ner_candidates"
FACTORY = "scored_beam_ner"

HOW_TO_GET_SCORES = (
    "Entity probabilities come from the 'scored_beam_ner' component (spaCy's beam_ner that also "
    "writes them): train with configs/ner_beam.cfg, then calibrate with "
    "`python -m spacy llama-ner calibrate PIPELINE DEV.spacy OUTPUT`. See docs/confidence.md."
)


class EntityScoresUnavailable(ValueError):
    """The pipeline gives no entity probabilities (e.g. a greedy `ner`), and says how to get them."""


class ScoresConfigError(ValueError):
    """A setting of the scored_beam_ner component is not allowed; names the config key."""

    def __init__(self, key: str, message: str):
        super().__init__(f"[{FACTORY}] {key}: {message}")
        self.key = key


def _lookup(span, attr: str) -> Optional[float]:
    group = span.doc.spans.get(CANDIDATES_KEY)
    if group is None or attr not in group.attrs:
        return None
    for candidate, p in zip(group, group.attrs[attr]):
        if candidate.start == span.start and candidate.end == span.end and candidate.label == span.label:
            return None if math.isnan(p) else float(p)
    return None


def span_score(span) -> Optional[float]:
    """The probability (calibrated where the pipeline has a calibrator) that `span`, with
    its exact boundaries and label, is an entity; None when the doc has none for it."""
    return _lookup(span, "scores")


def span_raw_score(span) -> Optional[float]:
    """The beam's marginal probability of `span`, before calibration; None as for score."""
    return _lookup(span, "raw_scores")


def entity_scores(doc) -> Dict[Tuple[int, int, str], float]:
    """{(start_char, end_char, label): probability} of the doc's scored candidates
    (preset entities left out); empty when the pipeline gives no scores."""
    group = doc.spans.get(CANDIDATES_KEY)
    if group is None:
        return {}
    return {
        (span.start_char, span.end_char, span.label_): float(p)
        for span, p in zip(group, group.attrs.get("scores", []))
        if not math.isnan(p)
    }


def has_scores(nlp) -> bool:
    """Whether the pipeline writes entity probabilities (it has an enabled scored_beam_ner)."""
    return any(getattr(pipe, "writes_entity_scores", False) for _, pipe in nlp.pipeline)


def require_scores(nlp) -> None:
    """Raise EntityScoresUnavailable, saying how to get scores, when `nlp` gives none."""
    if has_scores(nlp):
        return
    ners = [name for name, pipe in nlp.pipeline if pipe.__class__.__name__ == "EntityRecognizer"]
    if ners:
        name = ners[0]
        width = nlp.get_pipe(name).cfg.get("beam_width", 1)
        kind = "greedy (beam_width = 1)" if width == 1 else f"spaCy's beam_ner (width {width}), which keeps no probabilities"
        raise EntityScoresUnavailable(f"Pipeline component '{name}' is {kind}: it gives no entity probabilities. {HOW_TO_GET_SCORES}")
    raise EntityScoresUnavailable(f"The pipeline has no entity recognizer. {HOW_TO_GET_SCORES}")


for _name, _getter in (("score", span_score), ("raw_score", span_raw_score)):
    if not Span.has_extension(_name):
        Span.set_extension(_name, getter=_getter)

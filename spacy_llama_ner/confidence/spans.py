"""Where entity probabilities live on a Doc, and how users read them.

Convention (spancat's): `doc.spans[CANDIDATES_KEY]` holds the scored entities (every
entity of `doc.ents`, and with scored_beam_ner the beam's other candidates above its
threshold), with arrays aligned to it in `attrs`: "scores" (calibrated when the pipeline
has a calibrator, else the raw scores), "raw_scores" (the beam's marginals, or
spancat's probabilities) and
"preset" (entities set by an earlier component, which the model did not score: NaN).
All survive DocBin and Doc.to_bytes.

    for ent in doc.ents:
        print(ent.text, ent.label_, ent._.score, ent._.raw_score)

`Span._.score` is None when the doc has no score for that exact span and label (a
pipeline without scores, or an entity preset upstream).
"""
import math
from typing import Dict, Optional, Set, Tuple

import numpy
from spacy.tokens import Doc, Span, SpanGroup

CANDIDATES_KEY = "ner_candidates"
FACTORY = "scored_beam_ner"

Entity = Tuple[int, int, str]  # (start token, end token, label)

HOW_TO_GET_SCORES = (
    "Entity probabilities come from the 'scored_beam_ner' component (spaCy's beam_ner that also "
    "writes them) or from spancat with 'scored_spancat_ents': train with configs/ner_beam.cfg "
    "(or configs/ner_spancat.cfg), then calibrate with "
    "`python -m spacy llama-ner calibrate PIPELINE DEV.spacy OUTPUT`. See docs/confidence.md."
)


class EntityScoresUnavailable(ValueError):
    """The pipeline gives no entity probabilities (e.g. a greedy `ner`), and says how to get them."""


class ScoresConfigError(ValueError):
    """A setting of a scored component is not allowed; names the component's factory and the config key."""

    def __init__(self, key: str, message: str, factory: str = FACTORY):
        super().__init__(f"[{factory}] {key}: {message}")
        self.key = key


def check_candidates_key(value, key: str, factory: str = FACTORY) -> None:
    """The scores' doc.spans key is fixed: ent._.score, annotate and calibrate read them
    there. The setting stays in the config so that saved pipelines keep loading."""
    if value != CANDIDATES_KEY:
        raise ScoresConfigError(key, f"must be \"{CANDIDATES_KEY}\" (ent._.score, annotate and calibrate read the "
                                     f"scores from doc.spans[\"{CANDIDATES_KEY}\"]), got {value!r}", factory)


def write_scored_entities(doc: Doc, raw_scores: Dict[Entity, float], preset: Set[Entity], calibrator) -> None:
    """doc.spans[CANDIDATES_KEY]: the scored entities (`raw_scores`: the model's probability of each,
    every entity of doc.ents among them), ordered by position, with the arrays of the
    convention above; `calibrator` (or None) maps raw scores to `scores`."""
    ordered = sorted(raw_scores, key=lambda ent: (ent[0], ent[1], -raw_scores[ent], ent[2]))
    raw = numpy.asarray([raw_scores[ent] for ent in ordered], dtype="float32")
    is_preset = numpy.asarray([ent in preset for ent in ordered], dtype="bool")
    if calibrator is None:
        scores = raw.copy()
    else:  # (text, label) of each: a calibrator fitted with the training data looks them up
        scores = calibrator.apply(raw, [(doc[start:end].text, label) for start, end, label in ordered])
    scores[is_preset] = numpy.nan
    raw[is_preset] = numpy.nan
    doc.spans[CANDIDATES_KEY] = SpanGroup(
        doc, name=CANDIDATES_KEY, spans=[Span(doc, start, end, label=label) for start, end, label in ordered],
        attrs={"scores": scores, "raw_scores": raw, "preset": is_preset},
    )


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
    """The model's probability of `span` (the beam's marginal, or spancat's), before calibration; None as for score."""
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
    """Whether the pipeline writes entity probabilities (an enabled scored_beam_ner or scored_spancat_ents)."""
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

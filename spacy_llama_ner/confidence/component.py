"""`scored_beam_ner`: spaCy's beam NER that also writes each entity's probability.

The component is spaCy's own `EntityRecognizer` with a beam (the `beam_ner` factory's
class and settings; training is unchanged). The only difference is `set_annotations`:
besides `doc.ents` (the best parse of the beam) it writes the entity marginals of the
*same* beams, spaCy's `EntityRecognizer.scored_ents` (the summed probability of the
beam's final parses that contain an entity), to `doc.spans["ner_candidates"]` with
`attrs["scores"]`, so there is one beam search per doc.

Why not a second beam search after `beam_ner`: spaCy's NER keeps annotation already on
a doc fixed (tokens inside `doc.ents` stay in their entity, tokens set to O stay O), so a
second search over an annotated doc finds only parses that contain every entity of
`doc.ents`, and every score comes out 1.0.

Entities set by an earlier component (an `entity_ruler` before this one) are honoured by
the beam in the same way: they are kept in `doc.ents` and flagged in
`attrs["preset"]`, and `ent._.score` is None for them: the model did not choose them.

With a calibrator (fitted by `python -m spacy llama-ner calibrate`, saved with the
pipeline), `attrs["scores"]` are calibrated probabilities and `attrs["raw_scores"]` keep
the beam's marginals.
"""
from pathlib import Path
from typing import Callable, List, Optional, Set

from spacy.language import Language
from spacy.pipeline import EntityRecognizer
from spacy.pipeline._parser_internals.transition_system import TransitionSystem
from spacy.tokens import Doc
from thinc.api import Model

from .calibrator import CALIBRATOR_FILE, Calibrator
from .spans import CANDIDATES_KEY, FACTORY, Entity, ScoresConfigError, check_candidates_key, write_scored_entities


def _check_probability(value, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= float(value) <= 1.0:
        raise ScoresConfigError(key, f"must be a probability in [0, 1] (0 keeps every candidate of the beam), got {value!r}")
    return float(value)


def check_beam(width, density, name: str) -> None:
    if isinstance(width, bool) or not isinstance(width, int) or width < 2:
        raise ScoresConfigError(
            f"components.{name}.beam_width",
            f"must be an integer >= 2 (a beam of one parse gives no probabilities; 8 to 16 is usual), got {width!r}",
        )
    if isinstance(density, bool) or not isinstance(density, (int, float)) or not 0.0 <= density < 1.0:
        raise ScoresConfigError(
            f"components.{name}.beam_density",
            f"must be in [0, 1) (0 keeps every parse of the beam: best for probabilities), got {density!r}",
        )


class ScoredEntityRecognizer(EntityRecognizer):
    """spaCy's beam EntityRecognizer that also stores entity probabilities; see the module docstring."""

    writes_entity_scores = True

    def __init__(self, vocab, model, name: str = "ner", *, threshold: float = 0.1,
                 spans_key: str = CANDIDATES_KEY, **kwargs):
        super().__init__(vocab, model, name, **kwargs)
        check_beam(self.cfg["beam_width"], self.cfg["beam_density"], name)
        self.threshold = _check_probability(threshold, f"components.{name}.threshold")
        check_candidates_key(spans_key, f"components.{name}.spans_key")
        self.calibrator: Optional[Calibrator] = None

    # ------------------------------------------------------------------ annotation
    def set_annotations(self, docs, states_or_beams) -> None:
        preset: List[Set[Entity]] = [{(e.start, e.end, e.label_) for e in doc.ents} for doc in docs]
        super().set_annotations(docs, states_or_beams)
        if any(len(doc) for doc in docs):
            if not hasattr(states_or_beams[0], "probs"):  # greedy states: beam_width was set to 1
                check_beam(self.cfg["beam_width"], self.cfg["beam_density"], self.name)
            marginals = self.scored_ents(states_or_beams)
        else:  # spaCy skips the search when every doc is empty
            marginals = [{} for _ in docs]
        for doc, doc_marginals, doc_preset in zip(docs, marginals, preset):
            self._write_scores(doc, doc_marginals, doc_preset)

    def _write_scores(self, doc: Doc, marginals: dict, preset: Set[Entity]) -> None:
        kept = {ent: min(1.0, float(p)) for ent, p in marginals.items() if p >= self.threshold and ent not in preset}
        for ent in ((e.start, e.end, e.label_) for e in doc.ents):  # every entity of doc.ents, scored or preset
            kept.setdefault(ent, min(1.0, float(marginals.get(ent, 0.0))))
        write_scored_entities(doc, kept, preset, self.calibrator)

    # ------------------------------------------------------------------ serialization
    # spaCy's parser saves cfg, model and moves; the calibrator is one more file.
    def to_disk(self, path, exclude=tuple()):
        super().to_disk(path, exclude=exclude)
        if self.calibrator is not None:
            self.calibrator.to_disk(Path(path) / CALIBRATOR_FILE)

    def from_disk(self, path, exclude=tuple()):
        super().from_disk(path, exclude=exclude)
        file = Path(path) / CALIBRATOR_FILE
        self.calibrator = Calibrator.from_disk(file) if file.exists() else None
        return self

    def to_bytes(self, exclude=tuple()):
        import srsly

        calibrator = None if self.calibrator is None else self.calibrator.to_dict()
        return srsly.msgpack_dumps({"parser": super().to_bytes(exclude=exclude), "calibrator": calibrator})

    def from_bytes(self, bytes_data, exclude=tuple()):
        import srsly

        data = srsly.msgpack_loads(bytes_data)
        super().from_bytes(data["parser"], exclude=exclude)
        self.calibrator = None if data["calibrator"] is None else Calibrator.from_dict(data["calibrator"], "bytes")
        return self


@Language.factory(
    FACTORY,
    assigns=["doc.ents", "token.ent_iob", "token.ent_type", "doc.spans"],
    default_config={
        "moves": None,
        "update_with_oracle_cut_size": 100,
        "model": {
            "@architectures": "spacy.TransitionBasedParser.v2", "state_type": "ner", "extra_state_tokens": False,
            "hidden_width": 64, "maxout_pieces": 2, "use_upper": True,
            "tok2vec": {"@architectures": "spacy.HashEmbedCNN.v2", "pretrained_vectors": None, "width": 96,
                        "depth": 4, "embed_size": 2000, "window_size": 1, "maxout_pieces": 3, "subword_features": True},
        },
        "beam_width": 8,
        "beam_density": 0.0,
        "beam_update_prob": 0.5,
        "incorrect_spans_key": None,
        "scorer": {"@scorers": "spacy.ner_scorer.v1"},
        "threshold": 0.1,
        "spans_key": CANDIDATES_KEY,
    },
    default_score_weights={"ents_f": 1.0, "ents_p": 0.0, "ents_r": 0.0, "ents_per_type": None},
)
def make_scored_beam_ner(
    nlp: Language,
    name: str,
    model: Model,
    moves: Optional[TransitionSystem],
    update_with_oracle_cut_size: int,
    beam_width: int,
    beam_density: float,
    beam_update_prob: float,
    incorrect_spans_key: Optional[str],
    scorer: Optional[Callable],
    threshold: float,
    spans_key: str,
) -> ScoredEntityRecognizer:
    """spaCy's beam_ner (same settings, same training) that also writes entity
    probabilities: doc.spans["ner_candidates"] holds every entity of doc.ents and the beam's
    other candidates with probability >= threshold, attrs["scores"] aligned."""
    return ScoredEntityRecognizer(
        nlp.vocab, model, name=name, moves=moves, update_with_oracle_cut_size=update_with_oracle_cut_size,
        beam_width=beam_width, beam_density=beam_density, beam_update_prob=beam_update_prob,
        incorrect_spans_key=incorrect_spans_key, scorer=scorer, threshold=threshold, spans_key=spans_key,
    )

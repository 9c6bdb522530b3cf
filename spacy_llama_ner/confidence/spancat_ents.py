"""`scored_spancat_ents`: spaCy's `spancat_singlelabel` as the entity recognizer, its
spans written to doc.ents with their probabilities.

The other design for entity probabilities (configs/ner_spancat.cfg, beside the beam's
configs/ner_beam.cfg): spaCy's stock `spancat_singlelabel`, listening to the
transformer, gives every suggested span (up to the longest entity) one label or none
(its negative label) with a softmax probability, and with `allow_overlap = false` keeps
the most probable spans that do not overlap. This component, after it, writes those
spans to doc.ents and their probabilities to `doc.spans["ner_candidates"]` in the
convention of spans.py, calibrated where the pipeline has a calibrator (fitted by
`python -m spacy llama-ner calibrate`), so `ent._.score` reads them as it reads
scored_beam_ner's. Entities set by an earlier component stay and are flagged preset;
spancat's spans that overlap them are dropped.

spancat learns from `doc.spans[spans_key]` of the reference docs: the
`spacy_llama_ner.ents_as_spans.v1` augmenter copies each corpus doc's entities there,
so the same .spacy files train either design.
"""
import math
from pathlib import Path
from typing import Callable, Dict, Iterator, Optional

import numpy
from spacy.language import Language
from spacy.pipeline import Pipe, SpanCategorizer
from spacy.tokens import Doc
from spacy.training import Example
from spacy.util import registry

from .calibrator import CALIBRATOR_FILE, Calibrator
from .spans import CANDIDATES_KEY, Entity, check_candidates_key, write_scored_entities

FACTORY = "scored_spancat_ents"


class ScoredSpancatEnts(Pipe):
    """doc.spans[spans_key] of a spancat_singlelabel -> doc.ents and scored entities; see the module docstring."""

    writes_entity_scores = True

    def __init__(self, vocab, name: str, *, spans_key: str, candidates_key: str, scorer: Optional[Callable]):
        self.vocab = vocab
        self.name = name
        check_candidates_key(candidates_key, f"components.{name}.candidates_key", FACTORY)
        self.spans_key = spans_key
        self.scorer = scorer
        self.calibrator: Optional[Calibrator] = None

    def __call__(self, doc: Doc) -> Doc:
        group = doc.spans.get(self.spans_key)
        if group is None:
            raise ValueError(
                f"[{self.name}] doc.spans['{self.spans_key}'] is missing: put a spancat_singlelabel with "
                f"spans_key = \"{self.spans_key}\" before this component (configs/ner_spancat.cfg)"
            )
        preset = {(e.start, e.end, e.label_) for e in doc.ents}
        taken = {i for start, end, _ in preset for i in range(start, end)}
        ents = list(doc.ents)
        raw: Dict[Entity, float] = {ent: math.nan for ent in preset}
        # spancat_singlelabel's scores: each span's probability of its label, one row per span
        probabilities = numpy.asarray(group.attrs.get("scores", []), dtype="float32").reshape(-1)
        for span, p in zip(group, probabilities):
            if taken.isdisjoint(range(span.start, span.end)):
                ents.append(span)
                raw[(span.start, span.end, span.label_)] = float(p)
        doc.ents = sorted(ents, key=lambda span: span.start)
        write_scored_entities(doc, raw, preset, self.calibrator)
        return doc

    def initialize(self, get_examples: Callable[[], Iterator[Example]], *, nlp: Optional[Language] = None) -> None:
        """Check the spancat it reads: before this component, single-label, without overlaps,
        and suggesting every entity of the training data (else it could never predict them)."""
        if nlp is None:
            return
        names = [name for name, _ in nlp.pipeline]
        spancats = [(name, pipe) for name, pipe in nlp.pipeline
                    if isinstance(pipe, SpanCategorizer) and pipe.key == self.spans_key]
        if not spancats or names.index(spancats[0][0]) > names.index(self.name):
            raise ValueError(f"[{self.name}] needs a spancat_singlelabel with spans_key = \"{self.spans_key}\" before it "
                             f"in the pipeline; the pipeline is {names}")
        name, spancat = spancats[0]
        if spancat.cfg["max_positive"] != 1 or spancat.cfg["allow_overlap"] or not spancat.add_negative_label:
            raise ValueError(f"[{self.name}] component '{name}' must be a spancat_singlelabel with allow_overlap = false "
                             "(one label or none per span, spans that do not overlap, as entities are)")
        missed, longest = 0, None
        for eg in get_examples():
            suggested = {tuple(row) for row in spancat.suggester([eg.reference]).dataXd.tolist()}
            for ent in eg.reference.ents:
                if (ent.start, ent.end) not in suggested:
                    missed += 1
                    longest = ent if longest is None or len(ent) > len(longest) else longest
        if missed:
            raise ValueError(
                f"[{self.name}] {missed} training entities are never suggested by component '{name}', so it could "
                f"never predict them (the longest: {len(longest)} tokens, {longest.text!r}): raise max_size in "
                f"[components.{name}.suggester]"
            )

    # The calibrator is this component's only state: saved as scored_beam_ner saves it.
    def to_disk(self, path, exclude=tuple()):
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        if self.calibrator is not None:
            self.calibrator.to_disk(path / CALIBRATOR_FILE)

    def from_disk(self, path, exclude=tuple()):
        file = Path(path) / CALIBRATOR_FILE
        self.calibrator = Calibrator.from_disk(file) if file.exists() else None
        return self

    def to_bytes(self, exclude=tuple()):
        import srsly

        return srsly.msgpack_dumps({"calibrator": None if self.calibrator is None else self.calibrator.to_dict()})

    def from_bytes(self, bytes_data, exclude=tuple()):
        import srsly

        data = srsly.msgpack_loads(bytes_data)["calibrator"]
        self.calibrator = None if data is None else Calibrator.from_dict(data, "bytes")
        return self


@Language.factory(
    FACTORY,
    assigns=["doc.ents", "token.ent_iob", "token.ent_type", "doc.spans"],
    default_config={"spans_key": "sc", "candidates_key": CANDIDATES_KEY, "scorer": {"@scorers": "spacy.ner_scorer.v1"}},
    default_score_weights={"ents_f": 1.0, "ents_p": 0.0, "ents_r": 0.0, "ents_per_type": None},
)
def make_scored_spancat_ents(nlp: Language, name: str, spans_key: str, candidates_key: str,
                             scorer: Optional[Callable]) -> ScoredSpancatEnts:
    """The spans of the spancat_singlelabel writing doc.spans[spans_key], as doc.ents with scores."""
    return ScoredSpancatEnts(nlp.vocab, name, spans_key=spans_key, candidates_key=candidates_key, scorer=scorer)


@registry.augmenters("spacy_llama_ner.ents_as_spans.v1")
def create_ents_as_spans(spans_key: str) -> Callable[[Language, Example], Iterator[Example]]:
    """[corpora.*.augmenter]: each example with its reference entities also in
    doc.spans[spans_key], where spancat learns from (and is scored on)."""

    def ents_as_spans(nlp: Language, example: Example) -> Iterator[Example]:
        reference = example.reference.copy()
        reference.spans[spans_key] = list(reference.ents)
        yield Example(example.predicted, reference)

    return ents_as_spans

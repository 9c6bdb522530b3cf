"""`ner_confidence`: entity probabilities from spaCy's beam NER, stored as spancat stores scores.

Place it after a stock `beam_ner` component (configs/ner_beam.cfg does). For each doc it
runs that component's beam search, `EntityRecognizer.beam_parse`, and turns the beam's
parses into marginals: the probability of an entity (start, end, label) is the summed
probability of the parses in the beam that contain it, the quantity spaCy's own
`EntityRecognizer.scored_ents` computes. The candidates with a probability of at least
`threshold`, plus every entity of the best parse (doc.ents), go to
`doc.spans["ner_candidates"]` with `attrs["scores"]` aligned.

The beam search reads the transformer output that the `transformer` component left on
the doc (the NER listens): the decoder runs once; only the NER's own small network and
its beam search run a second time (experiments/confidence/README.md measures it).

`temperature` rescales the beam's parse probabilities, p_i ** (1 / T) renormalized
(softmax of the parse scores divided by T), before the marginals are summed: T > 1
flattens overconfident beams. `fit_temperature` (spacy_llama_ner/calibration.py) fits it
on a dev set; a fitted value is saved with the pipeline.
"""
from collections import defaultdict
from pathlib import Path
from typing import Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

import numpy
import srsly
from spacy.language import Language
from spacy.pipeline import EntityRecognizer
from spacy.tokens import Doc, SpanGroup
from spacy.util import minibatch

from .scores import CANDIDATES_KEY, HOW_TO_GET_SCORES, EntityScoresUnavailable

FACTORY = "ner_confidence"

Parse = Tuple[float, List[Tuple[int, int, str]]]


class ConfidenceConfigError(ValueError):
    """A setting of the ner_confidence component (or of the beam_ner it reads) is not allowed."""

    def __init__(self, key: str, message: str):
        super().__init__(f"[{FACTORY}] {key}: {message}")
        self.key = key


def _check_threshold(value, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= float(value) <= 1.0:
        raise ConfidenceConfigError(key, f"must be a probability in [0, 1] (0 keeps every candidate of the beam), got {value!r}")
    return float(value)


def _check_beam_width(value, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfidenceConfigError(key, f"must be an integer >= 1 (1 = greedy, 4 to 16 for probabilities), got {value!r}")
    return value


def _check_temperature(value, key: str) -> Optional[float]:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not float(value) > 0.0 or not numpy.isfinite(value):
        raise ConfidenceConfigError(key, f"must be a number > 0 (1 = the beam's own probabilities) or null, got {value!r}")
    return float(value)


def beam_marginals(parses: Sequence[Parse], temperature: float = 1.0) -> Dict[Tuple[int, int, str], float]:
    """{(start, end, label): probability} from a beam's final parses [(prob, entities)]:
    the parse probabilities raised to 1/temperature and renormalized, summed per entity."""
    if not parses:
        return {}
    probs = numpy.asarray([p for p, _ in parses], dtype="float64")
    if temperature != 1.0:
        probs = probs ** (1.0 / temperature)
    total = probs.sum()
    if total <= 0.0 or not numpy.isfinite(total):
        probs = numpy.full(len(parses), 1.0 / len(parses))
    else:
        probs = probs / total
    marginals: Dict[Tuple[int, int, str], float] = defaultdict(float)
    for p, (_, ents) in zip(probs, parses):
        for ent in ents:
            marginals[ent] += float(p)
    return {ent: min(1.0, p) for ent, p in marginals.items()}


class EntityConfidence:
    """Entity probabilities after a beam_ner component; see the module docstring."""

    writes_entity_scores = True

    def __init__(
        self,
        nlp: Language,
        name: str = FACTORY,
        *,
        ner: str = "ner",
        threshold: float = 0.1,
        beam_width: Optional[int] = None,
        temperature: Optional[float] = None,
        spans_key: str = CANDIDATES_KEY,
    ):
        self.name = name
        self.nlp = nlp
        self.ner_name = ner
        self.threshold = _check_threshold(threshold, f"components.{name}.threshold")
        self.beam_width = None if beam_width is None else _check_beam_width(beam_width, f"components.{name}.beam_width")
        self._config_temperature = _check_temperature(temperature, f"components.{name}.temperature")
        self.temperature = 1.0 if self._config_temperature is None else self._config_temperature
        self.spans_key = spans_key
        self.source()  # validate now: the NER must come before this component

    # ------------------------------------------------------------------ the source NER
    def source(self) -> EntityRecognizer:
        """The beam_ner component read, checked: it exists, is an entity recognizer, and
        has a valid beam (or this component sets its own beam_width)."""
        nlp = self.nlp
        if not nlp.has_pipe(self.ner_name):
            raise ConfidenceConfigError(
                f"components.{self.name}.ner",
                f"no component '{self.ner_name}' before '{self.name}' (pipeline: {nlp.pipe_names}); "
                "put the beam_ner component first and name it here",
            )
        ner = nlp.get_pipe(self.ner_name)
        if not isinstance(ner, EntityRecognizer):
            raise ConfidenceConfigError(
                f"components.{self.name}.ner",
                f"'{self.ner_name}' is a {type(ner).__name__}, not an entity recognizer (factory 'beam_ner')",
            )
        width = _check_beam_width(ner.cfg.get("beam_width", 1), f"components.{self.ner_name}.beam_width")
        density = ner.cfg.get("beam_density", 0.0)
        if not isinstance(density, (int, float)) or not 0.0 <= density < 1.0:
            raise ConfidenceConfigError(f"components.{self.ner_name}.beam_density", f"must be in [0, 1), got {density!r}")
        if width == 1 and self.beam_width is None:
            raise EntityScoresUnavailable(
                f"[{self.name}] component '{self.ner_name}' is greedy (beam_width = 1): its single parse "
                f"gives no probabilities. {HOW_TO_GET_SCORES} (To decode a greedy-trained model with a "
                f"beam anyway, set components.{self.name}.beam_width; its scores are then uncalibrated.)"
            )
        return ner

    @property
    def width(self) -> int:
        """The beam width used: this component's beam_width, else the NER's."""
        return self.beam_width if self.beam_width is not None else int(self.source().cfg["beam_width"])

    # ------------------------------------------------------------------ running
    def beam_parses(self, docs: List[Doc]) -> List[List[Parse]]:
        """Per doc, the beam's final parses [(probability, [(start, end, label)])]."""
        ner = self.source()
        parses: List[List[Parse]] = [[] for _ in docs]
        nonempty = [i for i, doc in enumerate(docs) if len(doc)]
        if not nonempty:
            return parses
        beams = ner.beam_parse(
            [docs[i] for i in nonempty], beam_width=self.width, beam_density=float(ner.cfg.get("beam_density", 0.0))
        )
        for i, beam in zip(nonempty, beams):
            parses[i] = [(float(p), list(ents)) for p, ents in ner.moves.get_beam_parses(beam)]
        return parses

    def set_scores(self, doc: Doc, parses: Sequence[Parse]) -> None:
        """Write doc.spans[spans_key] from one doc's beam parses."""
        marginals = beam_marginals(parses, self.temperature)
        keep = {ent: p for ent, p in marginals.items() if p >= self.threshold}
        for ent in doc.ents:  # the best parse is always scored
            key = (ent.start, ent.end, ent.label_)
            keep.setdefault(key, marginals.get(key, 0.0))
        ordered = sorted(keep.items(), key=lambda item: (item[0][0], item[0][1], -item[1], item[0][2]))
        spans = [doc[start:end] for (start, end, _), _ in ordered]
        for span, ((_, _, label), _) in zip(spans, ordered):
            span.label_ = label
        scores = numpy.asarray([p for _, p in ordered], dtype="float32")
        doc.spans[self.spans_key] = SpanGroup(doc, name=self.spans_key, spans=spans, attrs={"scores": scores})

    def __call__(self, doc: Doc) -> Doc:
        self.set_scores(doc, self.beam_parses([doc])[0])
        return doc

    def pipe(self, docs: Iterable[Doc], *, batch_size: int = 64) -> Iterator[Doc]:
        for batch in minibatch(docs, size=batch_size):
            batch = list(batch)
            for doc, parses in zip(batch, self.beam_parses(batch)):
                self.set_scores(doc, parses)
            yield from batch

    # ------------------------------------------------------------------ serialization
    # Only a fitted temperature is saved; threshold and beam width come from the config.
    def _state(self) -> dict:
        return {"temperature": self.temperature}

    def _load_state(self, state: dict) -> None:
        if self._config_temperature is None and "temperature" in state:
            self.temperature = _check_temperature(state["temperature"], f"{self.name}/cfg temperature")

    def to_bytes(self, *, exclude=tuple()) -> bytes:
        return srsly.msgpack_dumps(self._state())

    def from_bytes(self, data: bytes, *, exclude=tuple()) -> "EntityConfidence":
        self._load_state(srsly.msgpack_loads(data))
        return self

    def to_disk(self, path, *, exclude=tuple()) -> None:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        srsly.write_json(path / "cfg", self._state())

    def from_disk(self, path, *, exclude=tuple()) -> "EntityConfidence":
        cfg = Path(path) / "cfg"
        if cfg.exists():
            self._load_state(srsly.read_json(cfg))
        return self


@Language.factory(
    FACTORY,
    default_config={"ner": "ner", "threshold": 0.1, "beam_width": None, "temperature": None, "spans_key": CANDIDATES_KEY},
    assigns=[f"doc.spans"],
    requires=["doc.ents"],
)
def make_ner_confidence(
    nlp: Language,
    name: str,
    ner: str,
    threshold: float,
    beam_width: Optional[int],
    temperature: Optional[float],
    spans_key: str,
) -> EntityConfidence:
    """Entity probabilities from the beam of the `ner` component (a beam_ner): candidates
    with probability >= threshold, plus the best parse, in doc.spans[spans_key] with
    attrs["scores"]. beam_width: null = the NER's own; temperature: null = fitted or 1."""
    return EntityConfidence(
        nlp, name, ner=ner, threshold=threshold, beam_width=beam_width, temperature=temperature, spans_key=spans_key
    )

"""Spans cut at max_length are counted per run (issue 33, item 7): a training run's total
in the transformer model's attrs, each Doc's in its user_data (annotate sums those), and
the warning names the running count instead of appearing once per process."""
import warnings

from spacy.training import Example

from conftest import make_nlp

LONG = " ".join(["Peter Smith flew to London"] * 8)


def test_truncated_spans_are_counted_in_training_and_per_doc(tiny_llama):
    nlp = make_nlp(tiny_llama, max_length=10)
    examples = [Example.from_dict(nlp.make_doc(t), {"entities": [(0, 11, "PER")]}) for t in (LONG, "Peter Smith .")]
    nlp.initialize(lambda: examples)
    model = nlp.get_pipe("transformer").model
    before = model.attrs.get("truncated_spans", 0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        for _ in range(3):
            nlp.update(examples)
    assert model.attrs["truncated_spans"] - before == 3  # one long span per update
    messages = [str(w.message) for w in caught if "max_length=10" in str(w.message)]
    assert messages and "so far" in messages[0]
    docs = list(nlp.pipe([LONG, "Peter Smith ."]))
    assert [d.user_data.get("spacy_llama_ner.truncated_spans", 0) for d in docs] == [1, 0]

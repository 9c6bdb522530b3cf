"""attention = "echo": a causal model fed each span twice, read from the second
copy, so every token's features have seen the whole span."""
import numpy
import pytest
import torch
from transformers import AutoModel, AutoTokenizer

from spacy_llama_ner.backbone.alignment import tokenize_spans
from spacy_llama_ner.settings import BackboneSettings, ConfigError
from conftest import make_nlp, token_vectors

SENTENCE = "Peter Smith said the bank in London won"
CHANGED = "Peter Smith said the bank in London lost"
LONGER = "the government of France said on Monday that the minister in Paris told Reuters the market was new"


def pipeline(path, attention="echo", **settings):
    nlp = make_nlp(path, attention=attention, with_ner=False, **settings)
    nlp.initialize()
    return nlp


@pytest.mark.parametrize("attn_implementation", ["sdpa", "eager"])
def test_the_last_word_reaches_earlier_tokens(tiny_llama, attn_implementation):
    """Unlike causal (bit-identical earlier tokens), echo's earlier tokens change."""
    nlp = pipeline(tiny_llama, attn_implementation=attn_implementation)
    before = token_vectors(nlp, [SENTENCE, LONGER])[0][:-1]
    after = token_vectors(nlp, [CHANGED, LONGER])[0][:-1]
    assert (numpy.abs(before - after).max(axis=1) > 1e-4).all()


def test_echo_is_the_causal_backbone_on_the_repeated_text(tiny_llama):
    """Built independently: the tokenizer's pieces of the span, then the same
    pieces again; transformers' own LlamaModel (causal) on that sequence gives
    the states the alignment reads, and only second-copy positions are read."""
    nlp = pipeline(tiny_llama)
    shim = nlp.get_pipe("transformer").model.shims[0]
    tokenizer = AutoTokenizer.from_pretrained(tiny_llama)
    first = tokenizer(SENTENCE).input_ids
    pieces = tokenizer(SENTENCE, add_special_tokens=False).input_ids
    repeated = torch.tensor([first + pieces])
    spans = [nlp.make_doc(SENTENCE)[:]]
    batch, offsets = tokenize_spans(shim.tokenizer, spans, 512, shim.pad_id, echo=True)
    assert batch.input_ids.tolist() == repeated.tolist()
    assert (offsets[0][: len(first)] == 0).all() and (offsets[0][len(first):, 1] > 0).all()
    with torch.no_grad():
        ours = shim._model(repeated, torch.ones_like(repeated, dtype=torch.bool))[0]
        reference = AutoModel.from_pretrained(tiny_llama)(input_ids=repeated).last_hidden_state[0]
    torch.testing.assert_close(ours, reference, rtol=1e-4, atol=1e-4)
    # the pipeline's own forward aligns spaCy tokens to second-copy pieces only
    data = nlp.get_pipe("transformer").model.predict([nlp.make_doc(SENTENCE)]).doc_data[0]
    assert data.align.dataXd.min() >= len(first)


def test_padding_changes_nothing(tiny_llama):
    nlp = pipeline(tiny_llama)
    alone = token_vectors(nlp, [SENTENCE])[0]
    batched = token_vectors(nlp, [SENTENCE, LONGER, "EU officials met"])[0]
    noise = (numpy.linalg.norm(alone - batched, axis=1) / numpy.linalg.norm(alone, axis=1)).max()
    assert noise < 1e-4


def test_max_length_counts_both_copies(tiny_llama):
    nlp = pipeline(tiny_llama, max_length=16)
    shim = nlp.get_pipe("transformer").model.shims[0]
    batch, offsets = tokenize_spans(shim.tokenizer, [nlp.make_doc(LONGER)[:]], 16, shim.pad_id, echo=True)
    assert batch.lengths[0] <= 16
    with pytest.warns(UserWarning, match='counting both copies of attention = "echo"'):
        vectors = token_vectors(nlp, [LONGER])[0]
    assert numpy.isfinite(vectors).all() and (numpy.abs(vectors).sum(axis=1) > 0).all()


def test_echo_keeps_every_layer_causal_and_has_no_layer_setting():
    assert BackboneSettings(name="m", attention="echo").causal_layers(4) == [True] * 4
    with pytest.raises(ConfigError, match="bidirectional_from_layer: is 2"):
        BackboneSettings(name="m", attention="echo", bidirectional_from_layer=2)

"""Attention really switches: a later word reaches earlier tokens only when bidirectional."""
import numpy
import pytest
import torch
from transformers import AutoModel

from spacy_llama_ner.backbone.alignment import tokenize_spans
from conftest import make_nlp, make_tiny_model, token_vectors

SENTENCE = "Peter Smith said the bank in London won"
CHANGED = "Peter Smith said the bank in London lost"
LONGER = "the government of France said on Monday that the minister in Paris told Reuters the market was new"


def pipeline(path, attention, **settings):
    nlp = make_nlp(path, attention=attention, with_ner=False, **settings)
    nlp.initialize()
    return nlp


@pytest.fixture(scope="module", params=["llama", "mistral", "qwen2"])
def family_model(request, tmp_path_factory):
    return make_tiny_model(tmp_path_factory.mktemp(request.param), family=request.param)


@pytest.mark.parametrize("attn_implementation", ["sdpa", "eager"])
@pytest.mark.parametrize("padded", [False, True], ids=["alone", "padded-batch"])
def test_later_word_reaches_earlier_tokens_only_when_bidirectional(family_model, attn_implementation, padded):
    extra = [LONGER] if padded else []
    for attention in ("causal", "bidirectional"):
        nlp = pipeline(family_model, attention, attn_implementation=attn_implementation)
        before = token_vectors(nlp, [SENTENCE] + extra)[0][:-1]
        after = token_vectors(nlp, [CHANGED] + extra)[0][:-1]
        if attention == "causal":
            numpy.testing.assert_array_equal(before, after)
        else:
            # every earlier token sees the change
            assert (numpy.abs(before - after).max(axis=1) > 1e-4).all()


def test_layerwise_keeps_lower_layers_causal(tiny_llama):
    """bidirectional_from_layer=2: layers 0-1 stay causal (their outputs for earlier
    tokens are bit-identical), the final output of earlier tokens changes."""
    nlp = pipeline(tiny_llama, "bidirectional", bidirectional_from_layer=2)
    encoder = nlp.get_pipe("transformer").model.shims[0]._model
    assert encoder.causal_layers == [True, True, False, False]
    captured = {}

    def run(text):
        hook = encoder.backbone.layers[1].register_forward_hook(
            lambda module, args, out: captured.__setitem__("layer1", (out[0] if isinstance(out, tuple) else out).clone())
        )
        try:
            vectors = token_vectors(nlp, [text, LONGER])[0]
        finally:
            hook.remove()
        return vectors, captured["layer1"][0]

    final_a, layer1_a = run(SENTENCE)
    final_b, layer1_b = run(CHANGED)
    n_same = len(nlp.tokenizer(SENTENCE)) - 1  # pieces of the unchanged prefix (+BOS)
    torch.testing.assert_close(layer1_a[:n_same], layer1_b[:n_same], rtol=0, atol=0)
    assert (numpy.abs(final_a[:-1] - final_b[:-1]).max(axis=1) > 1e-4).all()


def test_causal_encoder_matches_transformers_forward(tiny_llama):
    """Driving the layers ourselves gives what LlamaModel.forward gives (causal)."""
    nlp = pipeline(tiny_llama, "causal")
    shim = nlp.get_pipe("transformer").model.shims[0]
    reference = AutoModel.from_pretrained(tiny_llama).eval()
    spans = [nlp.make_doc(text)[:] for text in (SENTENCE, LONGER)]
    batch, _ = tokenize_spans(shim.tokenizer, spans, max_length=512, pad_id=shim.pad_id)
    input_ids = torch.from_numpy(batch.input_ids)
    valid = torch.from_numpy(batch.attention_mask).bool()
    assert not valid.all()  # the batch is padded
    with torch.no_grad():
        ours = shim._model(input_ids, valid)
        theirs = reference(input_ids=input_ids, attention_mask=valid.long()).last_hidden_state
    torch.testing.assert_close(ours[valid], theirs[valid], rtol=1e-4, atol=1e-4)

"""Padding changes nothing: a doc alone and inside a padded batch gets the same
vectors up to float noise, in both modes, while a mask that lets padding be
attended would show."""
import numpy
import pytest
import torch

from spacy_llama_ner.alignment import tokenize_spans
from conftest import make_nlp, token_vectors

SHORT = "Peter Smith flew to London ."
LONG = [
    "the government of France said on Monday that the minister in Paris told Reuters the market was new",
    "EU officials met in Brussels",
]


def relative_l2(a, b):
    """Per token: |a - b| / |a|."""
    return numpy.linalg.norm(a - b, axis=1) / numpy.linalg.norm(a, axis=1)


def leaky_vectors(nlp, texts):
    """Hidden states of texts[0] when the padding mask is dropped (pads attended)."""
    shim = nlp.get_pipe("transformer").model.shims[0]
    spans = [nlp.make_doc(t)[:] for t in texts]
    batch, _ = tokenize_spans(shim.tokenizer, spans, 512, shim.pad_id)
    with torch.no_grad():
        ids = torch.from_numpy(batch.input_ids)
        hidden = shim._model(ids, torch.ones_like(ids, dtype=torch.bool))
        alone = shim._model(ids[:1, : batch.lengths[0]], torch.ones((1, batch.lengths[0]), dtype=torch.bool))
    n = batch.lengths[0]
    return alone[0].numpy(), hidden[0, :n].numpy()


def check_padding(model_dir, attention, leak_threshold):
    nlp = make_nlp(model_dir, attention=attention, with_ner=False)
    nlp.initialize()
    alone = token_vectors(nlp, [SHORT])[0]
    batched = token_vectors(nlp, [SHORT] + LONG)[0]
    noise = relative_l2(alone, batched).max()
    print(f"{attention}: max per-token relative L2, alone vs padded batch: {noise:.2e}")
    assert noise < 5e-3
    if attention == "bidirectional":
        # the same comparison with pads attended is far outside float noise
        clean, leaked = leaky_vectors(nlp, [SHORT] + LONG)
        leak = relative_l2(clean, leaked).max()
        print(f"{attention}: with padding attended: {leak:.2f}")
        assert leak > leak_threshold


@pytest.mark.parametrize("attention", ["causal", "bidirectional"])
def test_padding_changes_nothing_tiny(tiny_llama, attention):
    check_padding(tiny_llama, attention, leak_threshold=0.05)


@pytest.mark.integration
@pytest.mark.parametrize("attention", ["causal", "bidirectional"])
def test_padding_changes_nothing_smollm2(smollm2_dir, attention):
    check_padding(smollm2_dir, attention, leak_threshold=0.5)


def test_length_groups_partition_rows_and_bound_padding():
    from spacy_llama_ner.encoder import PADDING_TOLERANCE, length_groups

    lengths = [5, 80, 7, 300, 12, 12, 64, 3, 150, 9] * 20
    for min_pieces, max_pieces in [(512, 8192), (2048, 4096)]:
        groups = length_groups(lengths, min_pieces, max_pieces)
        assert sorted(i for g in groups for i in g) == list(range(len(lengths)))
        for group in groups:
            padded = len(group) * max(lengths[i] for i in group)
            real = sum(lengths[i] for i in group)
            assert padded <= max(min_pieces + max(lengths), (1 + PADDING_TOLERANCE) * real)
            assert padded <= max_pieces or len(group) == 1

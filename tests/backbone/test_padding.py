"""Padding changes nothing: a doc alone and inside a padded batch gets the same
vectors up to float noise, in both modes, while a mask that lets padding be
attended would show."""
import numpy
import pytest
import torch

from spacy_llama_ner.backbone.alignment import tokenize_spans
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


# What the README claims: a doc alone and in a padded batch agree per token to a
# relative L2 below this (measured with SmolLM2: ~1e-6 causal and layer-wise,
# ~2.5e-5 bidirectional with SDPA), while attended padding shows 0.5 and more.
PADDING_NOISE = 1e-4
MODES = [("causal", 0), ("bidirectional", 0), ("bidirectional", 15)]
MODE_IDS = ["causal", "bidirectional", "layerwise15"]


def encoder_states(nlp, texts):
    """The encoder's hidden states for texts as one right-padded batch, with the
    batch's attention mask; checks that the rows really run padded together."""
    from spacy_llama_ner.backbone.encoder import length_groups

    shim = nlp.get_pipe("transformer").model.shims[0]
    spans = [nlp.make_doc(t)[:] for t in texts]
    batch, _ = tokenize_spans(shim.tokenizer, spans, 512, shim.pad_id)
    assert len(length_groups(list(batch.lengths))) == 1, "the rows must share one padded group"
    ids = torch.from_numpy(batch.input_ids)
    mask = torch.from_numpy(batch.attention_mask).bool()
    with torch.no_grad():
        hidden = shim._model(ids, mask)
    return ids, mask, hidden.numpy()


def real_rows(hidden, mask):
    return [hidden[i, : int(mask[i].sum())] for i in range(len(mask))]


def padding_noise(nlp):
    """Max per-token relative L2 of SHORT alone against SHORT padded in a batch."""
    _, mask, batched = encoder_states(nlp, [SHORT] + LONG)
    _, _, alone = encoder_states(nlp, [SHORT])
    n = int(mask[0].sum())
    assert n < mask.shape[1], "SHORT must be padded in the batch"
    return relative_l2(alone[0], batched[0, :n]).max()


def pipeline(model_dir, attention, from_layer=0, attn_implementation="sdpa"):
    nlp = make_nlp(
        model_dir, attention=attention, bidirectional_from_layer=from_layer,
        attn_implementation=attn_implementation, with_ner=False,
    )
    nlp.initialize()
    return nlp


def check_padding(model_dir, attention, leak_threshold, noise_limit, from_layer=0):
    nlp = pipeline(model_dir, attention, from_layer)
    alone = token_vectors(nlp, [SHORT])[0]
    batched = token_vectors(nlp, [SHORT] + LONG)[0]
    noise = relative_l2(alone, batched).max()
    print(f"{attention}: max per-token relative L2, alone vs padded batch: {noise:.2e}")
    assert noise < noise_limit
    if attention == "bidirectional":
        # the same comparison with pads attended is far outside float noise
        clean, leaked = leaky_vectors(nlp, [SHORT] + LONG)
        leak = relative_l2(clean, leaked).max()
        print(f"{attention}: with padding attended: {leak:.2f}")
        assert leak > leak_threshold


@pytest.mark.parametrize("attention", ["causal", "bidirectional"])
def test_padding_changes_nothing_tiny(tiny_llama, attention):
    check_padding(tiny_llama, attention, leak_threshold=0.05, noise_limit=PADDING_NOISE)


@pytest.mark.integration
@pytest.mark.parametrize("attention", ["causal", "bidirectional"])
def test_padding_changes_nothing_smollm2(smollm2_dir, attention):
    check_padding(smollm2_dir, attention, leak_threshold=0.5, noise_limit=PADDING_NOISE)


@pytest.mark.integration
@pytest.mark.parametrize("attn_implementation", ["sdpa", "eager"])
@pytest.mark.parametrize("attention,from_layer", MODES, ids=MODE_IDS)
def test_padded_row_matches_the_row_alone_smollm2(smollm2_dir, attention, from_layer, attn_implementation):
    """The encoder itself, on a batch that is checked to be padded."""
    noise = padding_noise(pipeline(smollm2_dir, attention, from_layer, attn_implementation))
    print(f"{attention} from layer {from_layer}, {attn_implementation}: {noise:.2e}")
    assert noise < PADDING_NOISE


@pytest.mark.integration
@pytest.mark.parametrize("attention,from_layer", MODES[1:], ids=MODE_IDS[1:])
def test_sdpa_and_eager_agree_on_a_padded_batch_smollm2(smollm2_dir, attention, from_layer):
    """SDPA gets a boolean mask (or none), eager an additive one: two code paths
    that must give the same states at every real position."""
    _, mask, sdpa = encoder_states(pipeline(smollm2_dir, attention, from_layer, "sdpa"), [SHORT] + LONG)
    _, _, eager = encoder_states(pipeline(smollm2_dir, attention, from_layer, "eager"), [SHORT] + LONG)
    worst = max(relative_l2(a, b).max() for a, b in zip(real_rows(sdpa, mask), real_rows(eager, mask)))
    print(f"{attention} from layer {from_layer}: sdpa vs eager {worst:.2e}")
    assert worst < PADDING_NOISE


@pytest.mark.integration
def test_bidirectional_matches_an_independent_reference_smollm2(smollm2_dir):
    """transformers' own LlamaModel (eager) with a 4-D mask built here, where every
    real piece sees every real piece: our bidirectional encoder must agree at all
    real positions of a padded batch, and transformers' causal run must not."""
    from transformers import AutoModel

    ids, mask, ours = encoder_states(pipeline(smollm2_dir, "bidirectional"), [SHORT] + LONG)
    reference = AutoModel.from_pretrained(smollm2_dir, attn_implementation="eager")
    keys_visible = torch.zeros(ids.shape[0], 1, ids.shape[1], ids.shape[1])
    keys_visible.masked_fill_(~mask[:, None, None, :], torch.finfo(torch.float32).min)
    with torch.no_grad():
        full = reference(input_ids=ids, attention_mask=keys_visible).last_hidden_state.numpy()
        causal = reference(input_ids=ids, attention_mask=mask.long()).last_hidden_state.numpy()
    pairs = lambda other: zip(real_rows(ours, mask), real_rows(other, mask))
    agree = max(relative_l2(a, b).max() for a, b in pairs(full))
    differ = max(relative_l2(a, b).max() for a, b in pairs(causal))
    print(f"bidirectional vs reference: {agree:.2e}; vs causal reference: {differ:.2f}")
    assert agree < PADDING_NOISE and differ > 0.5


def test_length_groups_partition_rows_and_bound_padding():
    from spacy_llama_ner.backbone.encoder import PADDING_TOLERANCE, length_groups

    lengths = [5, 80, 7, 300, 12, 12, 64, 3, 150, 9] * 20
    for min_pieces, max_pieces in [(512, 8192), (2048, 4096)]:
        groups = length_groups(lengths, min_pieces, max_pieces)
        assert sorted(i for g in groups for i in g) == list(range(len(lengths)))
        for group in groups:
            padded = len(group) * max(lengths[i] for i in group)
            real = sum(lengths[i] for i in group)
            assert padded <= max(min_pieces + max(lengths), (1 + PADDING_TOLERANCE) * real)
            assert padded <= max_pieces or len(group) == 1

"""layer_mix = true: features are a learned weighted sum of every layer's output
through the final norm; it starts as their mean, learns in training, is saved with
the pipeline, and a config that no longer matches the saved pipeline is refused."""
import pytest
import spacy
import torch
from spacy.training import Example
from spacy.util import fix_random_seed
from transformers import AutoModel, AutoTokenizer

from conftest import TRAIN, make_nlp, token_vectors
from spacy_llama_ner.settings import BackboneSettings, ConfigError

SENTENCE = "Peter Smith said the bank in London won"


def encoder_of(nlp):
    return nlp.get_pipe("transformer").model.shims[0]._model


def test_features_start_as_the_mean_of_the_normed_layer_outputs(tiny_llama):
    nlp = make_nlp(tiny_llama, attention="causal", with_ner=False, layer_mix=True, output_layer=3)
    nlp.initialize()
    ids = torch.tensor([AutoTokenizer.from_pretrained(tiny_llama)(SENTENCE).input_ids])
    reference_model = AutoModel.from_pretrained(tiny_llama)
    with torch.no_grad():
        ours = encoder_of(nlp)(ids, torch.ones_like(ids, dtype=torch.bool))[0]
        states = reference_model(input_ids=ids, output_hidden_states=True).hidden_states
        # hidden_states: the embeddings, then each layer's output (the 4th's through the norm)
        expected = torch.stack([reference_model.norm(states[i])[0] for i in (1, 2, 3)]).mean(dim=0)
        last = reference_model.norm(states[3])[0]
    torch.testing.assert_close(ours, expected, rtol=1e-4, atol=1e-4)
    assert not torch.allclose(ours, last, atol=1e-3)


def train_with_mix(model_dir, steps=10):
    fix_random_seed(0)
    nlp = make_nlp(model_dir, layer_mix=True)
    examples = [Example.from_dict(nlp.make_doc(t), {"entities": e}) for t, e in TRAIN]
    nlp.initialize(lambda: examples)
    optimizer = nlp.create_optimizer()
    for _ in range(steps):
        nlp.update(examples, sgd=optimizer, drop=0.1)
    return nlp


def test_the_mix_learns_and_is_saved_with_the_pipeline(tiny_llama, tmp_path):
    nlp = train_with_mix(tiny_llama)
    weights = encoder_of(nlp).layer_mix_weights().detach()
    assert weights.shape == (4,)
    torch.testing.assert_close(weights.sum(), torch.tensor(1.0))
    assert weights.max() - weights.min() > 0.01  # moved away from the mean (0.25 each)
    nlp.to_disk(tmp_path / "pipeline")
    again = spacy.load(tmp_path / "pipeline")
    torch.testing.assert_close(encoder_of(again).layer_mix_weights().detach(), weights)
    torch.testing.assert_close(torch.tensor(token_vectors(again, [SENTENCE])[0]),
                               torch.tensor(token_vectors(nlp, [SENTENCE])[0]))
    assert [(e.text, e.label_) for e in again(TRAIN[0][0]).ents] == [(e.text, e.label_) for e in nlp(TRAIN[0][0]).ents]


def test_switching_the_mix_in_a_saved_pipeline_is_refused(tiny_llama, tmp_path):
    for saved_with, loaded_with in ((True, False), (False, True)):
        nlp = make_nlp(tiny_llama, with_ner=False, layer_mix=saved_with)
        nlp.initialize()
        path = tmp_path / f"saved-{saved_with}"
        nlp.to_disk(path)
        with pytest.raises(ValueError, match=rf"saved with layer_mix = {saved_with} but the pipeline's config now says layer_mix = {loaded_with}"):
            spacy.load(path, config={"components": {"transformer": {"model": {"layer_mix": loaded_with}}}})


def test_layer_mix_is_validated(tiny_llama):
    for wrong in ("yes", 1, None):
        with pytest.raises(ConfigError, match=r"layer_mix: must be true or false"):
            BackboneSettings(name=str(tiny_llama), layer_mix=wrong)

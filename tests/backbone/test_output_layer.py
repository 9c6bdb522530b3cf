"""output_layer = N: features are layer N's output through the final norm, the
layers above are gone (memory, time and the saved pipeline), and the setting is
validated against the model."""
import pytest
import spacy
import torch
from transformers import AutoModel, AutoTokenizer

from conftest import make_nlp, token_vectors
from spacy_llama_ner.settings import BackboneSettings, ConfigError

SENTENCE = "Peter Smith said the bank in London won"


def pipeline(path, **settings):
    nlp = make_nlp(path, attention="causal", with_ner=False, **settings)
    nlp.initialize()
    return nlp


def test_features_are_layer_n_through_the_final_norm(tiny_llama):
    nlp = pipeline(tiny_llama, output_layer=2)  # the tiny model has 4 layers
    shim = nlp.get_pipe("transformer").model.shims[0]
    assert len(shim._model.backbone.layers) == 2 and shim._model.backbone.config.num_hidden_layers == 2
    ids = torch.tensor([AutoTokenizer.from_pretrained(tiny_llama)(SENTENCE).input_ids])
    reference_model = AutoModel.from_pretrained(tiny_llama)
    with torch.no_grad():
        ours = shim._model(ids, torch.ones_like(ids, dtype=torch.bool))[0]
        states = reference_model(input_ids=ids, output_hidden_states=True).hidden_states
        expected = reference_model.norm(states[2])[0]
        last = reference_model(input_ids=ids).last_hidden_state[0]
    torch.testing.assert_close(ours, expected, rtol=1e-4, atol=1e-4)
    assert not torch.allclose(ours, last, atol=1e-3)  # not the top layer's features


def test_a_saved_pipeline_keeps_n_layers_and_its_features(tiny_llama, tmp_path):
    nlp = pipeline(tiny_llama, output_layer=3)
    nlp.to_disk(tmp_path / "pipeline")
    again = spacy.load(tmp_path / "pipeline")
    assert len(again.get_pipe("transformer").model.shims[0]._model.backbone.layers) == 3
    torch.testing.assert_close(torch.tensor(token_vectors(again, [SENTENCE])[0]),
                               torch.tensor(token_vectors(nlp, [SENTENCE])[0]))


def test_output_layer_is_validated(tiny_llama):
    for wrong in (-1, 1.5, True):
        with pytest.raises(ConfigError, match=r"output_layer: must be a whole number >= 0"):
            BackboneSettings(name=str(tiny_llama), output_layer=wrong)
    nlp = make_nlp(tiny_llama, output_layer=5, with_ner=False)
    with pytest.raises(ConfigError, match=r"output_layer: is 5 but the model has 4 layers; allowed values: 0 \(the last\) to 4"):
        nlp.initialize()

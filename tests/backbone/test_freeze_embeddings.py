"""freeze_embeddings: validated, the input embedding stays exactly as loaded while the
rest trains, and a saved pipeline keeps it frozen."""
import pytest
import spacy
import torch
from confection import ConfigValidationError
from safetensors.torch import load_file
from spacy.training import Example

from conftest import TRAIN, make_nlp
from spacy_llama_ner import BackboneSettings, ConfigError


def backbone_of(nlp):
    return nlp.get_pipe("transformer").model.shims[0]._model.backbone


def update(nlp, steps, initialize):
    examples = [Example.from_dict(nlp.make_doc(t), {"entities": e}) for t, e in TRAIN]
    if initialize:
        nlp.initialize(lambda: examples)
    optimizer = nlp.create_optimizer()
    for _ in range(steps):
        nlp.update(examples, sgd=optimizer)


def test_freeze_embeddings_must_be_a_bool(tiny_llama):
    with pytest.raises(ConfigValidationError, match=r"freeze_embeddings\s+at root: 'yes' is not <class 'bool'>"):
        make_nlp(tiny_llama, freeze_embeddings="yes")
    with pytest.raises(ConfigError, match=r"freeze_embeddings: must be true or false, got 'yes'"):
        BackboneSettings(name=str(tiny_llama), freeze_embeddings="yes")


def test_embedding_stays_as_loaded_and_the_rest_trains_also_after_loading(tiny_llama, tmp_path):
    nlp = make_nlp(tiny_llama, freeze_embeddings=True)
    update(nlp, 3, initialize=True)
    backbone = backbone_of(nlp)
    original = load_file(tiny_llama / "model.safetensors")
    embedding_key = next(k for k in original if k.endswith("embed_tokens.weight"))
    layer_key = next(k for k in original if k.endswith("layers.0.self_attn.q_proj.weight"))
    params = dict(backbone.named_parameters())
    assert torch.equal(params["embed_tokens.weight"], original[embedding_key])
    assert not torch.equal(params["layers.0.self_attn.q_proj.weight"], original[layer_key])

    nlp.to_disk(tmp_path / "pipeline")
    again = spacy.load(tmp_path / "pipeline")
    embedding = dict(backbone_of(again).named_parameters())["embed_tokens.weight"]
    assert not embedding.requires_grad
    update(again, 2, initialize=False)
    assert torch.equal(dict(backbone_of(again).named_parameters())["embed_tokens.weight"], original[embedding_key])

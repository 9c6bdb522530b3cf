"""quantize = "int8" at load time: SmoothQuant smoothing is an exact rewrite, the linear
layers but down_proj become int8, the features stay close and the entities come out;
training, saving, a GPU, another dtype and a bad value are named errors; output_layer
set at load cuts a saved full-depth pipeline."""
import copy
import gc
import weakref

import numpy
import pytest
import spacy
import torch
from spacy.training import Example
from transformers import AutoModel, AutoTokenizer

from conftest import TRAIN, make_nlp, token_vectors, train_tiny
from spacy_llama_ner.backbone.encoder import LlamaEncoder
from spacy_llama_ner.backbone.quantize import input_maxima, quantize_int8, smooth
from spacy_llama_ner.settings import BackboneSettings, ConfigError

TEXTS = [t for t, _ in TRAIN] + ["Johnson said on Friday that the bank in Tokyo lost ."]
INT8 = {"components": {"transformer": {"model": {"quantize": "int8"}}}}


@pytest.fixture(scope="module")
def saved(tiny_llama, tmp_path_factory):
    path = tmp_path_factory.mktemp("quantize") / "model"
    train_tiny(tiny_llama, "bidirectional", steps=15).to_disk(path)
    return path


def linear_kinds(nlp):
    layers = nlp.get_pipe("transformer").model.shims[0]._model.backbone.layers
    kinds = {}
    for name, module in layers.named_modules():
        if isinstance(module, torch.ao.nn.quantized.dynamic.Linear):
            kinds[name] = "int8"
        elif isinstance(module, torch.nn.Linear):
            kinds[name] = "float32"
    return kinds


def test_smoothing_changes_weights_not_outputs(tiny_llama):
    model = AutoModel.from_pretrained(tiny_llama).eval()
    tokenizer = AutoTokenizer.from_pretrained(tiny_llama)
    encoder = LlamaEncoder(model, [False] * len(model.layers))
    ids = torch.tensor([tokenizer(TEXTS[1]).input_ids])
    mask = torch.ones_like(ids, dtype=torch.bool)
    with torch.no_grad():
        before = encoder(ids, mask)
        maxima = input_maxima(encoder, tokenizer, pad_id=0)
        gains = model.layers[0].input_layernorm.weight.clone()
        for i, layer in enumerate(model.layers):
            smooth(layer, f"{i}.", maxima)
        after = encoder(ids, mask)
    assert not torch.allclose(gains, model.layers[0].input_layernorm.weight)
    torch.testing.assert_close(after, before, rtol=1e-4, atol=1e-5)


def test_quantizing_frees_the_float32_weights_it_replaces(tiny_llama):
    """At once, not when the garbage collector next runs: int8 is to take less memory than
    float32, not add to it (torch.ao leaves each module a qconfig that refers back to it)."""
    model = AutoModel.from_pretrained(tiny_llama).eval()
    tokenizer = AutoTokenizer.from_pretrained(tiny_llama)
    encoder = LlamaEncoder(model, [False] * len(model.layers))
    replaced = weakref.ref(model.layers[0].self_attn.q_proj.weight)
    kept = model.layers[0].mlp.down_proj.weight
    gc.disable()
    try:
        quantize_int8(encoder, tokenizer, pad_id=0)
        assert replaced() is None
    finally:
        gc.enable()
    assert isinstance(model.layers[0].self_attn.q_proj, torch.ao.nn.quantized.dynamic.Linear)
    assert model.layers[0].mlp.down_proj.weight is kept


def test_int8_at_load_keeps_the_features_and_the_entities(saved):
    plain = spacy.load(saved)
    int8 = spacy.load(saved, config=INT8)
    kinds = linear_kinds(int8)
    assert {k for k, v in kinds.items() if v == "float32"} == {k for k in kinds if k.endswith("mlp.down_proj")}
    assert sum(v == "int8" for v in kinds.values()) == 6 * 4  # q, k, v, o, gate, up in 4 layers
    for ours, reference in zip(token_vectors(int8, TEXTS), token_vectors(plain, TEXTS)):
        change = numpy.linalg.norm(ours - reference, axis=1) / numpy.linalg.norm(reference, axis=1)
        assert 0 < numpy.median(change) < 0.15 and change.max() < 0.3, change  # a 64-wide random model
    ents = lambda nlp: [[(e.text, e.label_) for e in nlp(t).ents] for t in TEXTS]
    assert any(ents(plain))
    assert ents(int8) == ents(plain)


def test_a_quantized_model_neither_trains_nor_saves(saved, tmp_path):
    int8 = spacy.load(saved, config=INT8)
    examples = [Example.from_dict(int8.make_doc(t), {"entities": e}) for t, e in TRAIN]
    with pytest.raises(ConfigError, match=r"quantize: is \"int8\", which is for inference only"):
        int8.update(examples)
    with pytest.raises(ConfigError, match=r"quantize: is \"int8\": a quantized model is for inference and is not saved"):
        int8.to_disk(tmp_path / "again")


def test_bad_quantize_settings_are_named(tiny_llama, saved):
    with pytest.raises(ConfigError, match=r"quantize: got 'int4'; allowed values: null .* \"int8\""):
        BackboneSettings(name=str(tiny_llama), quantize="int4")
    with pytest.raises(ConfigError, match=r"quantize: \"int8\" quantizes a float32 model; set dtype = \"float32\""):
        spacy.load(saved, config={"components": {"transformer": {"model": {"quantize": "int8", "dtype": "bfloat16"}}}})


def test_lora_is_merged_before_quantizing(tiny_llama, tmp_path):
    nlp = make_nlp(tiny_llama, with_ner=False, lora={"r": 4, "alpha": 8})
    nlp.initialize()
    without_adapters = token_vectors(nlp, TEXTS)  # lora_B starts at zero
    with torch.no_grad():  # adapters that change the features a lot, so that merging them matters
        for name, p in nlp.get_pipe("transformer").model.shims[0]._model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.3)
    nlp.to_disk(tmp_path / "lora")
    reference = token_vectors(spacy.load(tmp_path / "lora"), TEXTS)
    int8 = spacy.load(tmp_path / "lora", config=INT8)
    assert not any("lora" in name for name in linear_kinds(int8))
    for ours, ref, base in zip(token_vectors(int8, TEXTS), reference, without_adapters):
        assert numpy.linalg.norm(ours - ref) < 0.5 * numpy.linalg.norm(base - ref)


def test_output_layer_at_load_cuts_a_saved_pipeline(saved):
    cut = spacy.load(saved, config={"components": {"transformer": {"model": {"output_layer": 2}}}})
    backbone = cut.get_pipe("transformer").model.shims[0]._model.backbone
    assert len(backbone.layers) == 2 and backbone.config.num_hidden_layers == 2
    full = spacy.load(saved)
    assert not numpy.allclose(token_vectors(cut, TEXTS[:1])[0], token_vectors(full, TEXTS[:1])[0])

"""Loading offline from a model directory or a .gguf file, and config errors that
name the setting and what is allowed."""
import numpy
import pytest
from transformers import BertConfig, BertModel

from spacy_llama_ner import ConfigError
from conftest import make_nlp, token_vectors


def init_error(path, **settings):
    nlp = make_nlp(path, with_ner=False, **settings)
    with pytest.raises(ConfigError) as info:
        nlp.initialize()
    return str(info.value)


def build_error(**settings):
    with pytest.raises(ConfigError) as info:
        make_nlp(settings.pop("name", "assets/whatever"), with_ner=False, **settings)
    return str(info.value)


def test_unknown_attention_value_names_allowed_values():
    message = build_error(attention="both-ways")
    assert "attention" in message and "'causal'" in message and "'bidirectional'" in message


@pytest.mark.parametrize(
    "key, value, expected",
    [
        ("dtype", "float8", "allowed values: ['float32', 'bfloat16', 'float16']"),
        ("attn_implementation", "flash", "allowed values: ['sdpa', 'eager', 'flash_attention_2']"),
        ("bidirectional_from_layer", -1, "bidirectional_from_layer: must be a whole number >= 0"),
        ("lora", {"rank": 8}, "lora: unknown key(s) ['rank']; allowed keys: ['r', 'alpha', 'dropout', 'target_modules']"),
        ("lora", {"r": 0}, "lora.r: must be a whole number >= 1"),
        ("lora", {"dropout": 1.5}, "lora.dropout: must be in [0, 1)"),
        ("lora", {"target_modules": "q_proj"}, "lora.target_modules: must be a list of module names"),
        ("lora", {"target_modules": 3}, "lora.target_modules: must be a list of module names"),
        ("attn_implementation", "flash_attention_2", 'flash_attention_2 computes in bfloat16 or float16 only; set dtype = "bfloat16"'),
    ],
)
def test_invalid_settings_are_named(key, value, expected):
    assert expected in build_error(**{key: value})


def test_layer_out_of_range_names_the_range(tiny_llama):
    message = init_error(tiny_llama, bidirectional_from_layer=4)
    assert "bidirectional_from_layer" in message and "0 to 3" in message


def test_missing_lora_target_lists_the_modules(tiny_llama):
    message = init_error(tiny_llama, lora={"target_modules": ["query"]})
    assert "lora.target_modules" in message and "['query'] not found" in message and "q_proj" in message


def test_missing_model_path(tmp_path):
    message = init_error(tmp_path / "no-such-model")
    assert "model path not found" in message and str(tmp_path / "no-such-model") in message


def test_missing_gguf_file(tmp_path):
    assert "model path not found" in init_error(tmp_path / "model.gguf")


def test_not_a_llama_model(tmp_path):
    BertModel(BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=37)).save_pretrained(tmp_path)
    message = init_error(tmp_path)
    assert "'bert' model" in message and "LLaMA family" in message


def test_corrupt_gguf(tmp_path):
    path = tmp_path / "broken.gguf"
    path.write_bytes(b"GGUF" + b"\x00" * 64)
    assert "not a readable GGUF file" in init_error(path)


def test_hub_id_while_offline_says_how_to_use_a_local_path(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    message = init_error("meta-llama/Llama-3.2-1B")
    assert "HF_HUB_OFFLINE=1" in message and "local directory" in message


@pytest.mark.integration
def test_smollm2_from_gguf_matches_converted_directory(smollm2_dir):
    """The real model loads offline from its .gguf and from the converted directory,
    with the same weights (hence the same vectors)."""
    gguf = smollm2_dir.with_suffix(".gguf")
    texts = ["Acme hires a Swiss chef in Paris .", "Anna Berg"]
    results = []
    for name in (gguf, smollm2_dir):
        nlp = make_nlp(name, with_ner=False)
        nlp.initialize()
        backbone = nlp.get_pipe("transformer").model.shims[0]._model.backbone
        assert backbone.config.num_hidden_layers == 30 and backbone.config.hidden_size == 576
        results.append(token_vectors(nlp, texts))
    for a, b in zip(*results):
        numpy.testing.assert_allclose(a, b, rtol=0, atol=1e-5)


def test_dtype_the_device_cannot_run(tiny_llama, monkeypatch):
    """A device without the dtype's kernels (simulated: the probe's autocast fails)."""
    import torch

    def no_half(*args, **kwargs):
        raise RuntimeError("autocast: float16 is not supported here")

    monkeypatch.setattr(torch, "autocast", no_half)
    message = init_error(tiny_llama, dtype="float16")
    assert "dtype: float16 does not run on cpu" in message and "float32" in message


def test_a_saved_pipeline_checks_its_dtype_on_load_too(tiny_llama, tmp_path, monkeypatch):
    import spacy
    import torch

    nlp = make_nlp(tiny_llama, with_ner=False, dtype="float16")
    nlp.initialize()
    nlp.to_disk(tmp_path / "pipeline")

    def no_half(*args, **kwargs):
        raise RuntimeError("autocast: float16 is not supported here")

    monkeypatch.setattr(torch, "autocast", no_half)
    with pytest.raises(ConfigError, match="dtype: float16 does not run on cpu"):
        spacy.load(tmp_path / "pipeline")


@pytest.mark.parametrize("dtype,scaled", [("float16", True), ("bfloat16", False), ("float32", False)])
def test_float16_trains_with_loss_scaling(tiny_llama, dtype, scaled):
    nlp = make_nlp(tiny_llama, with_ner=False, dtype=dtype)
    nlp.initialize()
    assert nlp.get_pipe("transformer").model.shims[0].loss_scaler.is_enabled() is scaled


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_reduced_precision_runs_and_keeps_trainable_weights_float32(tiny_llama, dtype):
    lora = {"r": 4, "alpha": 8, "dropout": 0.0, "target_modules": ["q_proj", "v_proj"]}
    nlp = make_nlp(tiny_llama, with_ner=False, dtype=dtype, lora=lora)
    nlp.initialize()
    backbone = nlp.get_pipe("transformer").model.shims[0]._model.backbone
    dtypes = {(p.requires_grad, str(p.dtype)) for p in backbone.parameters()}
    assert dtypes == {(True, "torch.float32"), (False, f"torch.{dtype}")}
    vectors = token_vectors(nlp, ["Peter Smith flew to London ."])[0]
    assert vectors.dtype == numpy.float32 and numpy.isfinite(vectors).all()


def test_pad_token_setting(tiny_llama):
    nlp = make_nlp(tiny_llama, with_ner=False, pad_token="</s>")
    nlp.initialize()
    shim = nlp.get_pipe("transformer").model.shims[0]
    assert shim.pad_id == shim.tokenizer.convert_tokens_to_ids("</s>")
    assert "pad_token: '<nope>' is not in the tokenizer's vocabulary" in init_error(tiny_llama, pad_token="<nope>")



def test_convert_gguf_names_a_broken_or_missing_file_and_writes_nothing(tmp_path, capsys):
    from spacy_llama_ner.convert_gguf import main as convert_main

    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + b"\x00" * 64)
    for path, message in ((broken, "not a readable GGUF file"), (tmp_path / "missing.gguf", "GGUF file not found")):
        with pytest.raises(SystemExit) as exit_info:
            convert_main([str(path), str(tmp_path / "out")])
        assert exit_info.value.code == 1
        assert message in " ".join(capsys.readouterr().out.split())  # wasabi wraps long lines
        assert not (tmp_path / "out").exists()


def test_spans_stay_within_a_sliding_attention_window(tmp_path):
    """Mistral v0.1 attends within a window; our own masks would let a longer span
    see past it, so max_length above the window is refused, naming both."""
    import json

    from conftest import make_tiny_model

    model = make_tiny_model(tmp_path / "mistral", family="mistral")
    config = json.loads((model / "config.json").read_text())
    (model / "config.json").write_text(json.dumps({**config, "sliding_window": 64}))
    message = init_error(model, max_length=128)
    assert "max_length: is 128 but the model attends within a window of 64 pieces; allowed values: 8 to 64" in message
    nlp = make_nlp(model, with_ner=False, max_length=64)
    nlp.initialize()

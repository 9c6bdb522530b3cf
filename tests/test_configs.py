"""The shipped configs build (settings validated, nothing loaded yet) and stay in step."""
import pytest
from spacy.util import load_config, load_model_from_config

from conftest import ROOT

CONFIGS = ["ner_causal", "ner_bidirectional", "ner_llama32_1b_gpu", "ner_cnn"]


@pytest.mark.parametrize("name", CONFIGS)
def test_config_builds(name):
    config = load_config(ROOT / "configs" / f"{name}.cfg")
    nlp = load_model_from_config(config, auto_fill=True, validate=True)
    assert nlp.pipe_names[-1] == "ner"
    if name != "ner_cnn":
        assert config["initialize"]["after_init"]["@callbacks"] == "spacy_llama_ner.check_ner_labels.v1"


def test_causal_and_bidirectional_differ_only_in_attention():
    lines = [
        [l for l in (ROOT / "configs" / f"{n}.cfg").read_text().splitlines() if not l.startswith("#")]
        for n in ("ner_causal", "ner_bidirectional")
    ]
    diff = [(a, b) for a, b in zip(*lines) if a != b]
    assert len(lines[0]) == len(lines[1]) and diff == [('attention = "causal"', 'attention = "bidirectional"')]


def test_lora_block_from_the_command_line():
    """The GPU config's documented LoRA override parses into a LoRA setting."""
    overrides = {"components.transformer.model.lora": {"r": 16, "alpha": 32, "dropout": 0.05, "target_modules": ["q_proj", "v_proj"]}}
    config = load_config(ROOT / "configs" / "ner_llama32_1b_gpu.cfg", overrides=overrides)
    nlp = load_model_from_config(config, auto_fill=True, validate=True)
    settings = nlp.get_pipe("transformer").model.shims[0].settings
    assert settings.lora.r == 16 and settings.lora.target_modules == ["q_proj", "v_proj"]

"""The shipped configs build (settings validated, nothing loaded yet) and stay in step."""
import pytest
from spacy.util import load_config, load_model_from_config

from conftest import ROOT

CONFIGS = ["ner_causal", "ner_bidirectional", "ner_llama32_1b_gpu", "ner_beam", "ner_spancat"]


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


def spacy_cli(*args):
    import os
    import subprocess
    import sys

    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "spacy", *args], capture_output=True, text=True, env=env)


@pytest.mark.parametrize("name", CONFIGS)
def test_spacy_debug_config_passes(name):
    """The configs are complete (what `spacy init fill-config` writes), so spaCy's
    own checks accept them as they are."""
    result = spacy_cli("debug", "config", str(ROOT / "configs" / f"{name}.cfg"))
    assert result.returncode == 0 and "Config is valid" in result.stdout, result.stdout[-2000:]


@pytest.mark.parametrize("name", CONFIGS)
def test_spacy_debug_data_passes(name, tiny_llama, tmp_path):
    from spacy_llama_ner.conll import conll_to_docbin

    # enough sentences (spaCy's debug data fails a new pipeline under 100), some without each label
    sentences = ["Peter B-PER\nSmith I-PER\nflew O\nto O\nLondon B-LOC", "the O\nbank O\nin O\nParis B-LOC",
                 "Maria B-PER\nsaid O\nno O", "prices O\nfell O"]
    conll = tmp_path / "data.txt"
    conll.write_text("\n\n".join(sentences * 40) + "\n")
    conll_to_docbin(conll).to_disk(tmp_path / "data.spacy")
    data = str(tmp_path / "data.spacy")
    result = spacy_cli(
        "debug", "data", str(ROOT / "configs" / f"{name}.cfg"),
        "--paths.train", data, "--paths.dev", data, "--paths.model", str(tiny_llama),
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0 and "Pipeline can be initialized with data" in output, output[-2000:]
    assert "Corpus is loadable" in output
    if name == "ner_spancat":  # spancat's spans come from the entities, through the config's augmenter
        assert "Span Categorization" in output and "Span characteristics for spans_key 'sc'" in output
    elif name != "ner_beam":  # spaCy's NER section covers its own ner factory, not scored_beam_ner
        assert "2 label(s)" in output

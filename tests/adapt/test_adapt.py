"""The adapt step (masked next-token prediction with bidirectional attention) on a real
tiny LLaMA with its LM head: the held-out loss goes down, the output is a model
directory our architecture loads, runs are reproducible, mistakes are named."""
import json

import pytest
from safetensors import safe_open

from conftest import _corpus, make_nlp, make_tiny_model
from spacy_llama_ner.adapt import main as adapt_main


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory):
    return make_tiny_model(tmp_path_factory.mktemp("tiny-lm"), lm_head=True)


@pytest.fixture(scope="module")
def text_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("adapt-text") / "texts.txt"
    path.write_text("\n".join(list(_corpus())[:400]) + "\n")
    return path


def run_adapt(model, text, out, *extra):
    args = [str(model), str(text), str(out), "--steps", "30", "--batch-size", "16", "--learn-rate", "2e-3",
            "--warmup-steps", "3", "--eval-every", "10", "--no-progress", *map(str, extra)]
    return adapt_main(args)


def test_lora_adaptation_lowers_held_out_loss_and_loads_as_a_bidirectional_backbone(tiny_lm, text_file, tmp_path):
    out = tmp_path / "adapted"
    assert run_adapt(tiny_lm, text_file, out) == 0
    report = json.loads((out / "adapt.json").read_text())
    assert report["held_out_loss_after"] < report["held_out_loss_before"] - 0.1, report
    log = [json.loads(line) for line in (out / "adapt_log.jsonl").read_text().splitlines()]
    assert [e["step"] for e in log if "held_out_loss" in e] == [0, 10, 20, 30]
    assert len([e for e in log if "loss" in e]) == 30
    with safe_open(str(out / "model.safetensors"), "pt") as f:
        names = list(f.keys())
    assert names and not [n for n in names if "lora" in n or "base_layer" in n]  # merged into the plain weights
    assert report["lora_target_modules"] == ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]

    from spacy.training import Example

    nlp = make_nlp(out, attention="bidirectional")
    examples = [Example.from_dict(nlp.make_doc("Peter Smith flew to London ."), {"entities": [(0, 11, "PER")]})]
    nlp.initialize(lambda: examples)
    assert nlp.update(examples)["ner"] > 0


def test_same_seed_same_run_and_full_weights_work(tiny_lm, text_file, tmp_path):
    logs = []
    for name in ("a", "b"):
        assert run_adapt(tiny_lm, text_file, tmp_path / name, "--lora-r", "0", "--seed", "4") == 0
        logs.append([json.loads(line) for line in (tmp_path / name / "adapt_log.jsonl").read_text().splitlines()])
    assert logs[0] == logs[1]
    assert logs[0][-1]["held_out_loss"] < logs[0][0]["held_out_loss"]


def test_mistakes_are_named(tiny_lm, tiny_llama, text_file, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + b"\x00" * 64)
    full = tmp_path / "full"
    full.mkdir()
    (full / "x").write_text("x")
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("Madrid\nEspaña\n".encode("latin-1"))
    cases = [
        ((tiny_lm, tmp_path / "missing.txt", tmp_path / "o1"), f"text file not found: {tmp_path / 'missing.txt'}"),
        ((tiny_lm, text_file, full), f"{full} exists and is not empty"),
        ((tiny_lm, text_file, tmp_path / "o2", "--bidirectional-from-layer", "9"),
         "--bidirectional-from-layer must be from 0 to 3 (the model has 4 layers)"),
        ((tmp_path / "nope", text_file, tmp_path / "o3"), "model path not found"),
        ((tiny_lm, latin1, tmp_path / "o4"), f"{latin1}:2: not UTF-8 (byte 0xf1)"),
        (("meta-llama/Llama-3.2-1B", text_file, tmp_path / "o5"), "HF_HUB_OFFLINE=1"),
        ((broken, text_file, tmp_path / "o6"), "not a readable GGUF file"),
        ((tiny_llama, text_file, tmp_path / "o7"), "has no LM head"),
        # LoRA is set up by spacy_llama_ner.backbone.lora.add_lora, as for training, with its check
        ((tiny_lm, text_file, tmp_path / "o8", "--lora-target-modules", "q_proj", "qkv"),
         "--lora-target-modules q_proj qkv: ['qkv'] not found in the model; its linear modules are ["),
    ]
    for args, message in cases:
        assert run_adapt(*args) == 1
        assert message in capsys.readouterr().err


def test_length_grouped_batches_cover_each_text_once_with_similar_lengths():
    import random

    from spacy_llama_ner.adapt import length_grouped_batches

    texts = [("w " * random.Random(i).randint(1, 60)).strip() + f" {i}" for i in range(1000)]
    batches = length_grouped_batches(texts, 16, random.Random(0), pool_batches=10)
    assert sorted(t for batch in batches for t in batch) == sorted(texts)
    assert all(1 <= len(batch) <= 16 for batch in batches)
    spread = sum(max(map(len, b)) - min(map(len, b)) for b in batches) / len(batches)
    shuffled = random.Random(1).sample(texts, len(texts))
    random_spread = sum(max(map(len, shuffled[i:i + 16])) - min(map(len, shuffled[i:i + 16])) for i in range(0, 1000, 16)) / 63
    assert spread < random_spread / 5, (spread, random_spread)
    assert batches == length_grouped_batches(texts, 16, random.Random(0), pool_batches=10)
    assert batches != length_grouped_batches(texts, 16, random.Random(1), pool_batches=10)

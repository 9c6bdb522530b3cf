"""Save and load: same outputs and entities in a fresh offline process, for
causal, bidirectional, layer-wise and LoRA pipelines; no silent random reload;
no 4 GiB single-blob limit."""
import json
import os
import shutil
import subprocess
import sys

import numpy
import torch
import pytest
import spacy
from spacy.training import Example

from spacy_llama_ner.backbone import serialization
from conftest import make_nlp, token_vectors

TRAIN = [
    ("Peter Smith flew to London on Monday .", [(0, 11, "PER"), (20, 26, "LOC")]),
    ("Maria Johnson works for the European Union in Paris .", [(0, 13, "PER"), (28, 42, "ORG"), (46, 51, "LOC")]),
    ("Reuters said Clinton met Yeltsin in Moscow .", [(0, 7, "ORG"), (13, 20, "PER"), (25, 32, "PER"), (36, 42, "LOC")]),
]
TEXTS = [t for t, _ in TRAIN] + ["John Clinton said the bank in Berlin won .", "Tokyo"]

LOAD_AND_RUN = """
import json, sys, numpy, spacy
sys.path.insert(0, {tests!r})
from conftest import token_vectors
nlp = spacy.load({path!r})
texts = json.loads({texts!r})
model = nlp.get_pipe("transformer").model
settings = model.shims[0].settings
vectors = token_vectors(nlp, texts)
numpy.savez({out!r}, *vectors)
ents = [[(e.start_char, e.end_char, e.label_) for e in doc.ents] for doc in nlp.pipe(texts, batch_size=2)]
print(json.dumps({{"ents": ents, "attention": settings.attention, "from_layer": settings.bidirectional_from_layer,
    "causal_layers": model.shims[0]._model.causal_layers, "lora": bool(settings.lora)}}))
"""


def trained_pipeline(model_dir, **settings):
    nlp = make_nlp(model_dir, **settings)
    examples = [Example.from_dict(nlp.make_doc(t), {"entities": e}) for t, e in TRAIN]
    nlp.initialize(lambda: examples)
    optimizer = nlp.create_optimizer()
    for _ in range(40):
        nlp.update(examples, sgd=optimizer, drop=0.0)
    return nlp


def load_in_fresh_process(path, tmp_path):
    out = tmp_path / "vectors.npz"
    code = LOAD_AND_RUN.format(
        tests=os.path.dirname(os.path.dirname(__file__)), path=str(path), texts=json.dumps(TEXTS), out=str(out)
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    info = json.loads(result.stdout.strip().splitlines()[-1])
    with numpy.load(out) as data:
        vectors = [data[f"arr_{i}"] for i in range(len(TEXTS))]
    return vectors, info


@pytest.mark.parametrize(
    "settings",
    [
        {"attention": "causal"},
        {"attention": "bidirectional"},
        {"attention": "bidirectional", "bidirectional_from_layer": 2},
        {"attention": "echo"},
        {"attention": "bidirectional", "lora": {"r": 4, "alpha": 8, "dropout": 0.0, "target_modules": ["q_proj", "v_proj"]}},
    ],
    ids=["causal", "bidirectional", "layerwise", "echo", "lora"],
)
def test_round_trip_in_fresh_offline_process(tiny_llama, tmp_path, settings):
    model_dir = shutil.copytree(tiny_llama, tmp_path / "model")
    nlp = trained_pipeline(model_dir, **settings)
    expected_vectors = token_vectors(nlp, TEXTS)
    expected_ents = [[(e.start_char, e.end_char, e.label_) for e in doc.ents] for doc in nlp.pipe(TEXTS)]
    assert any(expected_ents), "the pipeline should predict some entities"
    nlp.to_disk(tmp_path / "pipeline")
    shutil.rmtree(model_dir)  # the saved pipeline must not need the original model
    vectors, info = load_in_fresh_process(tmp_path / "pipeline", tmp_path)
    diff = max(float(numpy.abs(a - b).max()) for a, b in zip(expected_vectors, vectors))
    print(f"{settings}: max abs diff after reload {diff:.2e}")
    assert diff <= 1e-5
    assert [[tuple(e) for e in doc] for doc in info["ents"]] == expected_ents
    assert info["attention"] == settings["attention"]
    assert info["from_layer"] == settings.get("bidirectional_from_layer", 0)
    assert info["lora"] == ("lora" in settings)
    expected_layers = nlp.get_pipe("transformer").model.shims[0]._model.causal_layers
    assert info["causal_layers"] == expected_layers


def test_lora_weights_are_saved_and_only_they_train(tiny_llama, tmp_path):
    lora = {"r": 4, "alpha": 8, "dropout": 0.0, "target_modules": ["q_proj", "v_proj"]}
    nlp = trained_pipeline(tiny_llama, lora=lora)
    backbone = nlp.get_pipe("transformer").model.shims[0]._model.backbone
    trainable = [n for n, p in backbone.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    lora_b = dict(backbone.named_parameters())[trainable[1]]
    assert "lora_B" in trainable[1] and float(lora_b.detach().abs().sum()) > 0  # trained away from its zero init
    msg = nlp.get_pipe("transformer").model.shims[0].to_bytes()
    saved = serialization.shards_to_state(msg["weights"])
    assert all(n in saved for n in trainable)


SAVED_LORA = {"r": 4, "alpha": 8, "dropout": 0.0, "target_modules": ["q_proj"]}


@pytest.fixture(scope="module")
def saved_lora_pipeline(tiny_llama, tmp_path_factory):
    path = tmp_path_factory.mktemp("lora") / "pipeline"
    trained_pipeline(tiny_llama, lora=SAVED_LORA).to_disk(path)
    return path


@pytest.mark.parametrize(
    "edit,message",
    [
        ({"r": 8}, "lora.r: saved with 4, config says 8"),
        ({"alpha": 16}, "lora.alpha: saved with 8, config says 16"),
        ({"target_modules": ["q_proj", "v_proj"]}, "lora.target_modules: saved with ['q_proj'], config says ['q_proj', 'v_proj']"),
    ],
    ids=["r", "alpha", "target_modules"],
)
def test_editing_a_saved_lora_setting_is_named(saved_lora_pipeline, edit, message):
    """r and target_modules would not fit the saved shapes; alpha would silently
    rescale every adapter: each is an error that names the key."""
    lora = {**SAVED_LORA, **edit}
    with pytest.raises(ValueError, match="lora block was edited after saving") as info:
        spacy.load(saved_lora_pipeline, config={"components": {"transformer": {"model": {"lora": lora}}}})
    assert message in str(info.value)


def test_switching_lora_off_in_a_saved_pipeline_is_named(saved_lora_pipeline):
    with pytest.raises(ValueError, match="LoRA cannot be switched on or off in a saved pipeline"):
        spacy.load(saved_lora_pipeline, config={"components": {"transformer": {"model": {"lora": None}}}})


def test_lora_dropout_may_change_after_saving(saved_lora_pipeline):
    """dropout acts only in training: a saved pipeline loads with another one and
    predicts exactly as before."""
    expected = token_vectors(spacy.load(saved_lora_pipeline), TEXTS)
    lora = {**SAVED_LORA, "dropout": 0.3}
    nlp = spacy.load(saved_lora_pipeline, config={"components": {"transformer": {"model": {"lora": lora}}}})
    assert nlp.get_pipe("transformer").model.shims[0].settings.lora.dropout == 0.3
    vectors = token_vectors(nlp, TEXTS)
    assert max(float(numpy.abs(a - b).max()) for a, b in zip(expected, vectors)) == 0.0


def test_switching_lora_on_is_named(tiny_llama, tmp_path):
    """Edited in the saved pipeline's config.cfg (a null block cannot be overridden
    with a dict from the command line)."""
    from spacy.util import load_config

    path = tmp_path / "pipeline"
    trained_pipeline(tiny_llama).to_disk(path)
    config = load_config(path / "config.cfg", interpolate=False)
    config["components"]["transformer"]["model"]["lora"] = SAVED_LORA
    config.to_disk(path / "config.cfg")
    with pytest.raises(ValueError, match="saved with lora = None"):
        spacy.load(path)


def test_weights_are_sharded_below_the_blob_limit(tiny_llama, tmp_path, monkeypatch):
    """A lowered shard size stands in for the 4 GiB msgpack bin limit."""
    nlp = trained_pipeline(tiny_llama)
    shim = nlp.get_pipe("transformer").model.shims[0]
    limit = 60_000
    monkeypatch.setattr(serialization, "MAX_SHARD_BYTES", limit)
    msg = shim.to_bytes()
    state = shim._model.backbone.state_dict()
    biggest = max(t.numel() * t.element_size() for t in state.values())
    assert len(msg["weights"]) > 3
    assert all(len(shard) <= max(limit, biggest) + 10_000 for shard in msg["weights"])
    loaded = serialization.shards_to_state(msg["weights"])
    assert msg["weights"] == []  # each shard let go once read: loading's peak holds one copy less
    assert loaded.keys() == state.keys() and all(torch.equal(loaded[k], state[k]) for k in state)
    expected = token_vectors(nlp, TEXTS)
    nlp.to_disk(tmp_path / "pipeline")
    vectors, _ = load_in_fresh_process(tmp_path / "pipeline", tmp_path)
    assert max(float(numpy.abs(a - b).max()) for a, b in zip(expected, vectors)) <= 1e-5


def crafted_pipeline(tiny_llama, tmp_path, edit):
    """A saved pipeline whose transformer file was edited by `edit(shim_dict)`."""
    import srsly

    path = tmp_path / "crafted"
    nlp = make_nlp(tiny_llama, with_ner=False)
    nlp.initialize()
    nlp.to_disk(path)
    model_file = path / "transformer" / "model"
    data = srsly.msgpack_loads(model_file.read_bytes())
    edit(data["shims"][0][0])
    model_file.write_bytes(srsly.msgpack_dumps(data))
    return path


@pytest.mark.parametrize("name", ["../escaped.txt", "ABSOLUTE", "sub/dir.txt", ".."])
def test_a_crafted_tokenizer_file_name_writes_nothing_outside(tiny_llama, tmp_path, name, monkeypatch):
    """Loading an untrusted pipeline must not write where its file says: only plain file names."""
    import tempfile

    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))  # so "../x" would land in tmp_path
    target = tmp_path / "outside" / "escaped.txt"
    target.parent.mkdir()
    name = str(target) if name == "ABSOLUTE" else name
    cwd = os.getcwd()
    os.chdir(target.parent)  # so that a relative escape would land beside the target too
    try:
        path = crafted_pipeline(tiny_llama, tmp_path, lambda shim: shim["tokenizer"].__setitem__(name, b"pwned"))
        with pytest.raises(ValueError, match="not a plain file name"):
            spacy.load(path)
    finally:
        os.chdir(cwd)
    assert not target.exists()
    assert not list(tmp_path.glob("**/escaped.txt")) and not list(tmp_path.glob("**/dir.txt"))


def test_an_unknown_model_type_is_named(tiny_llama, tmp_path):
    path = crafted_pipeline(tiny_llama, tmp_path, lambda shim: shim["config"].__setitem__("model_type", "llama9"))
    with pytest.raises(ValueError, match="saved with model_type 'llama9', which this transformers version"):
        spacy.load(path)

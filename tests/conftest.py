"""Shared fixtures: tiny random LLaMA-family models with real trained tokenizers
(fast to run), and the real SmolLM2-135M for integration tests."""
import importlib.util
import os
from pathlib import Path

import numpy
import pytest
import spacy
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
from transformers import LlamaConfig, LlamaModel, MistralConfig, MistralModel, PreTrainedTokenizerFast
from transformers import Qwen2Config, Qwen2Model

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("CONLL_DIR", ROOT.parent / "shared" / "data" / "conll2003"))
SMOLLM2_DIR = Path(os.environ.get("SMOLLM2_DIR", ROOT / "assets" / "models" / "SmolLM2-135M"))


def load_script(path: str):
    """A script (PATH relative to the repository root) as a module, for testing its
    functions: scripts and experiments are no packages."""
    spec = importlib.util.spec_from_file_location(Path(path).stem, ROOT / path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module

WORDS = (
    "the a of to in and is was for on that with by at from as it his her their "
    "said says told after before new old first last year week day Monday Friday "
    "government minister president company bank market shares percent police "
    "Germany France Japan China Britain London Paris Tokyo Berlin Washington "
    "Reuters Smith Johnson Peter Maria John Clinton Yeltsin Bonn Moscow EU UN "
    "won lost beat match cup league club team goals players coach season "
    "Inc Corp Ltd Group United States European Union National Football"
).split()


def _corpus():
    import random

    rng = random.Random(0)
    for _ in range(3000):
        n = rng.randint(3, 15)
        yield " ".join(rng.choice(WORDS) for _ in range(n)) + rng.choice([".", ",", "!", "?", ""])


def train_tokenizer(style: str, vocab_size: int = 400) -> PreTrainedTokenizerFast:
    """A real trained BPE tokenizer: `bytelevel` (Llama 3 / SmolLM2 style, pieces
    like 'Ġis' with the space in their offsets) or `metaspace` (SentencePiece
    style, pieces like '▁is')."""
    special = ["<unk>", "<s>", "</s>"]
    if style == "bytelevel":
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
        tok.decoder = decoders.ByteLevel()
        alphabet = pre_tokenizers.ByteLevel.alphabet()
    else:
        tok = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True))
        tok.normalizer = normalizers.Sequence([])
        tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first")
        tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="first")
        alphabet = []
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=special, initial_alphabet=alphabet)
    tok.train_from_iterator(_corpus(), trainer)
    from tokenizers.processors import TemplateProcessing

    tok.post_processor = TemplateProcessing(single="<s> $A", special_tokens=[("<s>", tok.token_to_id("<s>"))])
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>"
    )


FAMILIES = {"llama": (LlamaConfig, LlamaModel), "mistral": (MistralConfig, MistralModel), "qwen2": (Qwen2Config, Qwen2Model)}


def make_tiny_model(path: Path, family: str = "llama", style: str = "bytelevel", layers: int = 4, lm_head: bool = False) -> Path:
    """A random model of `family` with a trained tokenizer; `lm_head`: with its LM head (a *ForCausalLM)."""
    tokenizer = train_tokenizer(style)
    config_cls, model_cls = FAMILIES[family]
    config = config_cls(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        initializer_range=0.2,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    import torch

    torch.manual_seed(0)
    if lm_head:
        from transformers import AutoModelForCausalLM

        AutoModelForCausalLM.from_config(config).save_pretrained(path)
    else:
        model_cls(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory) -> Path:
    return make_tiny_model(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="session")
def tiny_llama_metaspace(tmp_path_factory) -> Path:
    return make_tiny_model(tmp_path_factory.mktemp("tiny-llama-sp"), style="metaspace")


@pytest.fixture(scope="session")
def smollm2_dir() -> Path:
    if not (SMOLLM2_DIR / "config.json").exists():
        pytest.fail(
            f"SmolLM2-135M not found in {SMOLLM2_DIR}: run `make model` (the test "
            "suite's Makefile target does it) or set SMOLLM2_DIR"
        )
    return SMOLLM2_DIR


@pytest.fixture(scope="session")
def conll_dir() -> Path:
    if not (SHARED_DATA / "dev.txt").exists():
        pytest.fail(f"CoNLL-2003 not found in {SHARED_DATA}: set CONLL_DIR")
    return SHARED_DATA


def make_nlp(model_path, attention="bidirectional", get_spans=None, with_ner=True, **model_settings):
    """A blank English pipeline with our transformer and (with_ner) the stock NER listening."""
    nlp = spacy.blank("en")
    model = {
        "@architectures": "spacy_llama_ner.LlamaTransformer.v1",
        "name": str(model_path),
        "attention": attention,
        "get_spans": get_spans or {"@span_getters": "spacy-transformers.strided_spans.v1", "window": 128, "stride": 96},
        **model_settings,
    }
    nlp.add_pipe("transformer", config={"model": model})
    if not with_ner:
        return nlp
    nlp.add_pipe("ner", config={"model": NER_MODEL})
    return nlp


# spaCy's NER model listening to the transformer (the configs' own)
NER_MODEL = {
    "@architectures": "spacy.TransitionBasedParser.v2",
    "state_type": "ner",
    "extra_state_tokens": False,
    "hidden_width": 64,
    "maxout_pieces": 2,
    "use_upper": False,
    "tok2vec": {
        "@architectures": "spacy-transformers.TransformerListener.v1",
        "grad_factor": 1.0,
        "pooling": {"@layers": "reduce_mean.v1"},
        "upstream": "*",
    },
}


def token_vectors(nlp, texts):
    """Per doc, the (n_tokens, width) transformer features the NER sees: the mean
    of each token's aligned pieces, all docs run as one padded batch (None for a
    doc without tokens)."""
    docs = [nlp.make_doc(t) for t in texts]
    batch = nlp.get_pipe("transformer").model.predict(docs)
    vectors = []
    for data in batch.doc_data:
        if "last_hidden_state" not in data.model_output:
            vectors.append(None)
            continue
        hidden = data.model_output.last_hidden_state.reshape(-1, data.width)
        starts = numpy.concatenate([[0], numpy.cumsum(data.align.lengths)[:-1]])
        rows = [hidden[data.align.dataXd[s : s + n]].mean(axis=0) for s, n in zip(starts, data.align.lengths)]
        vectors.append(numpy.stack(rows))
    return vectors


TRAIN = [
    ("Peter Smith flew to London on Monday .", [(0, 11, "PER"), (20, 26, "LOC")]),
    ("Maria Johnson works for the European Union in Paris .", [(0, 13, "PER"), (28, 42, "ORG"), (46, 51, "LOC")]),
]


def train_tiny(model_dir, attention, seed=0, steps=15):
    """A pipeline trained for `steps` updates on TRAIN: it finds entities, in a few seconds."""
    from spacy.training import Example
    from spacy.util import fix_random_seed

    fix_random_seed(seed)
    nlp = make_nlp(model_dir, attention=attention)
    examples = [Example.from_dict(nlp.make_doc(t), {"entities": e}) for t, e in TRAIN]
    nlp.initialize(lambda: examples)
    optimizer = nlp.create_optimizer()
    for _ in range(steps):
        nlp.update(examples, sgd=optimizer, drop=0.1)
    return nlp


def pytest_collection_modifyitems(items):
    """Files with the longest tests first, by the tests' own timeout marks (the slow ones
    raise it): `make test`'s two workers take a file at a time, in this order
    (--no-loadscope-reorder), so the longest file does not run last and alone."""
    longest = {}
    for item in items:
        mark = item.get_closest_marker("timeout")
        longest[item.path] = max(longest.get(item.path, 0), mark.args[0] if mark and mark.args else 0)
    items.sort(key=lambda item: -longest[item.path])

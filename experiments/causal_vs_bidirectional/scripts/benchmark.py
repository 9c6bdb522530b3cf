"""Speed and memory of the pipeline against its limit and its peers, on the same docs.

    python scripts/benchmark.py --model ../../assets/models/SmolLM2-135M --data corpus/full/dev.spacy \
        --out metrics/benchmark [--gpu-id 0 --dtype bfloat16] [--n-docs 512] [--variants A,B,...]
    python scripts/benchmark.py --profile ours-bidirectional-train --out metrics/profile [...]

`--model llama-3.2-1b-shape` builds a Llama-3.2-1B-shaped model with random weights
(right for speed and memory, meaningless for accuracy) with SmolLM2's tokenizer;
`--model tiny-shape` a 2-layer, 64-wide one with the same tokenizer and vocabulary: its
backbone costs next to nothing, so what is left of a step is the pipeline's own cost
outside the backbone (spaCy, the alignment, the NER), the floor under any model;
`--model smollm2-shape` the model of `--tokenizer-from`'s own config.json with random
weights: SmolLM2's speed where only its config and tokenizer travel.

Every variant runs in its own process (so its peak memory is its own) over the same
docs cut into the same batches, once to warm up and then --repeats times; the
figure is the median. Variants:

  strict-forward, strict-train the strict limit: the raw backbone on exactly the
                               length groups our encoder cuts each batch into; train =
                               forward + backward per group, one fused torch AdamW step
                               per batch (no spaCy, alignment or NER)
  limit-forward, limit-train   the raw backbone (transformers' LlamaModel) forward,
                               and forward+backward, on the same padded batches
  ours-{causal,bidirectional,lora}-infer   nlp.pipe through our transformer + NER
  ours-{causal,bidirectional,lora}-train   nlp.update (forward, backward, optimizer)
  ours-ckpt-train, ours-freeze-train       bidirectional training with
                               gradient_checkpointing, or with freeze_embeddings
  ours-ckptN-train             gradient_checkpointing = N (the lowest N layers), e.g.
                               ours-ckpt10-train; ours-ckpt[N]-freeze-train adds
                               freeze_embeddings
  ours-layerwiseK-{infer,train}   bidirectional from layer K up (causal below it)
  ours-outputN-{infer,train}   bidirectional, features from layer N (output_layer = N:
                               the layers above it dropped)
  ours-thincadam-train         bidirectional training with thinc's per-parameter
                               Adam for the backbone instead of our fused torch step
  seed-infer, seed-train       LlamaForTokenClassification (the original recipe's
                               model) on the same batches; train adds AdamW
  spacy-cnn-infer, spacy-cnn-train   spaCy's CNN NER pipeline

Writes OUT.json and OUT.md: words/s, peak memory, and the ratios.

`--profile VARIANT` (one of the ours-...-train variants) instead splits one training
step (nlp.update) of that pipeline, on the same docs and batches, into its phases:
word pieces + alignment, backbone forward, the rest of the transformer component, the
backbone's optimizer step, spaCy's NER (parser, listener), backbone backward, the NER's
optimizer step, the rest of spaCy. One warm-up pass, then one pass with a timer around
each phase; on a GPU every timer waits for the device, and the step without those
waits is measured in a pass of its own. Writes OUT.md and OUT.json.
"""
import argparse
import hashlib
import json
import re
import resource
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from contextlib import contextmanager
from pathlib import Path
from statistics import median

VARIANTS = [
    "strict-forward", "limit-forward", "ours-causal-infer", "ours-bidirectional-infer", "ours-lora-infer", "seed-infer", "spacy-cnn-infer",
    "strict-train", "limit-train", "ours-causal-train", "ours-bidirectional-train", "ours-lora-train",
    "ours-ckpt-train", "ours-freeze-train", "ours-thincadam-train", "seed-train", "spacy-cnn-train",
]
# every name the module docstring lists (ours-ckptN[-freeze]-train, ours-layerwiseK-... included)
VARIANT_NAME = re.compile(
    r"(strict|limit)-(forward|train)|ours-(causal|bidirectional|lora|layerwise\d+|output\d+)-(infer|train)"
    r"|ours-(freeze|thincadam)-train"
    r"|ours-ckpt\d*(-freeze)?-train|(seed|spacy-cnn)-(infer|train)"
)
LORA = {"r": 16, "alpha": 32, "dropout": 0.0, "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj"]}
STUDY = Path(__file__).resolve().parent.parent
REPO = STUDY.parent.parent


def llama_1b_shape(path: Path, tokenizer_dir: str) -> Path:
    """Llama 3.2 1B's published shape with random weights (saved once), and the
    byte-level BPE tokenizer of `tokenizer_dir` standing in for Llama 3's."""
    if (path / "config.json").exists():
        return path
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaModel

    config = LlamaConfig(
        vocab_size=128256, hidden_size=2048, intermediate_size=8192, num_hidden_layers=16,
        num_attention_heads=32, num_key_value_heads=8, max_position_embeddings=131072,
        rope_theta=500000.0, tie_word_embeddings=True,
        rope_scaling={"rope_type": "llama3", "factor": 32.0, "low_freq_factor": 1.0,
                      "high_freq_factor": 4.0, "original_max_position_embeddings": 8192},
    )
    with torch.device("cuda" if torch.cuda.is_available() else "cpu"):
        model = LlamaModel(config).to(torch.bfloat16)  # half the bytes to write and read
    model.save_pretrained(path)
    AutoTokenizer.from_pretrained(tokenizer_dir).save_pretrained(path)
    return path


def load_docs(args):
    import spacy
    from spacy.tokens import DocBin

    nlp = spacy.blank("en")
    return list(DocBin().from_disk(args.data).get_docs(nlp.vocab))[: args.n_docs]


def batches_of(items, size):
    return [items[i : i + size] for i in range(0, len(items), size)]


def make_pipeline(args, variant):
    import spacy

    if variant.startswith("spacy-cnn"):
        config = spacy.util.load_config(STUDY / "configs" / "ner_cnn.cfg")
    else:
        config = spacy.util.load_config(REPO / "configs" / "ner_bidirectional.cfg")
        model = config["components"]["transformer"]["model"]
        model["name"] = args.model
        model["attention"] = "causal" if "causal" in variant else "bidirectional"
        model["dtype"] = args.dtype
        model["lora"] = LORA if "lora" in variant else None
        layerwise = re.search(r"-layerwise(\d+)-", variant)
        model["bidirectional_from_layer"] = int(layerwise.group(1)) if layerwise else 0
        output_layer = re.search(r"-output(\d+)-", variant)
        model["output_layer"] = int(output_layer.group(1)) if output_layer else 0
        # ours-ckpt-train: every layer; ours-ckptN-train: the lowest N
        layers = re.search(r"-ckpt(\d*)-", variant)
        model["gradient_checkpointing"] = (int(layers.group(1)) if layers.group(1) else True) if layers else False
        model["freeze_embeddings"] = "freeze" in variant
        config["initialize"]["after_init"] = None
    if "thincadam" in variant:  # this process only: the shim's update as thinc's PyTorchShim does it
        from thinc.api import PyTorchShim
        from spacy_llama_ner.backbone.model import LlamaShim

        LlamaShim.finish_update = PyTorchShim.finish_update
    return spacy.util.load_model_from_config(config, auto_fill=True, validate=True)


def run_ours(args, variant, docs, measure):
    from spacy.training import Example

    nlp = make_pipeline(args, variant)
    examples = [Example(nlp.make_doc(d.text), d) for d in docs]
    nlp.initialize(lambda: examples)
    texts = [d.text for d in docs]
    if variant.endswith("-infer"):
        return measure(lambda: list(nlp.pipe(texts, batch_size=args.batch_docs)))
    optimizer = nlp.create_optimizer()
    batches = batches_of(examples, args.batch_docs)
    return measure(lambda: [nlp.update(b, sgd=optimizer) for b in batches])


def length_grouped(batches, device):
    """Each padded batch as the groups of similar length our encoder runs, cut to width."""
    import torch
    from spacy_llama_ner.backbone.encoder import GROUP_PIECES, length_groups

    grouped = []
    for ids, mask in batches:
        lengths = mask.sum(dim=1).tolist()
        groups = []
        for rows in length_groups(lengths, *GROUP_PIECES[device.type == "cuda"]):
            width = max(lengths[i] for i in rows)
            index = torch.tensor(rows, device=device)
            groups.append((ids[index, :width], mask[index, :width]))
        grouped.append(groups)
    return grouped


def run_torch(args, variant, docs, measure):
    """The limits (raw LlamaModel) and the seed approach (LlamaForTokenClassification)
    on the batches our transformer would build for the same docs."""
    import torch
    from transformers import AutoModel, AutoModelForTokenClassification, AutoTokenizer
    from spacy_llama_ner.backbone.alignment import tokenize_spans

    device = torch.device(f"cuda:{args.gpu_id}" if args.gpu_id >= 0 else "cpu")
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    batches = []
    for chunk in batches_of(docs, args.batch_docs):
        wp, _ = tokenize_spans(tokenizer, [d[:] for d in chunk], 512, tokenizer.eos_token_id or 0)
        ids = torch.from_numpy(wp.input_ids).to(device)
        mask = torch.from_numpy(wp.attention_mask).long().to(device)
        batches.append((ids, mask))
    strict = variant.startswith("strict")
    # a batch is a list of (ids, mask) groups: one padded group, or our length groups
    batches = length_grouped(batches, device) if strict else [[batch] for batch in batches]
    seed = variant.startswith("seed")
    cls = AutoModelForTokenClassification if seed else AutoModel
    kwargs = {"num_labels": 9} if seed else {}
    model = cls.from_pretrained(args.model, attn_implementation="sdpa", **kwargs).to(device)
    model.config.use_cache = False
    dtype = {"float32": None, "bfloat16": torch.bfloat16, "float16": torch.float16}[args.dtype]

    def autocast():
        return torch.autocast(device.type, dtype=dtype, enabled=dtype is not None)

    if variant.endswith("forward") or variant.endswith("infer"):
        model.eval()

        def infer():
            with torch.inference_mode(), autocast():
                for groups in batches:
                    for ids, mask in groups:
                        model(input_ids=ids, attention_mask=mask)
            sync(device)
        return measure(infer)
    model.train()
    optimizer = None
    if seed:
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)
    elif strict:
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5, fused=True)

    def train():
        for groups in batches:
            for ids, mask in groups:
                with autocast():
                    out = model(input_ids=ids, attention_mask=mask)
                if seed:
                    labels = torch.where(mask.bool(), ids % 9, -100)
                    loss = torch.nn.functional.cross_entropy(out.logits.float().flatten(0, 1), labels.flatten(), ignore_index=-100)
                else:
                    loss = out.last_hidden_state.float().pow(2).mean()
                loss.backward()
            if optimizer:
                optimizer.step()
            model.zero_grad(set_to_none=True)
        sync(device)
    return measure(train)


def sync(device):
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize()


def run_variant(args):
    import torch

    if args.gpu_id >= 0:
        use_gpu(args.gpu_id)
    torch.manual_seed(0)
    docs = load_docs(args)
    words = sum(len(d) for d in docs)

    def measure(fn):
        fn()  # warm-up
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        return times

    runner = run_ours if args.variant.startswith(("ours", "spacy-cnn")) else run_torch
    times = runner(args, args.variant, docs, measure)
    result = {
        "variant": args.variant,
        "docs": len(docs),
        "words": words,
        "median_s": median(times),
        "words_per_s": words / median(times),
        "times_s": times,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    if args.gpu_id >= 0:
        result["peak_gpu_allocated_mb"] = torch.cuda.max_memory_allocated() / 2**20
        result["device"] = torch.cuda.get_device_name(args.gpu_id)
    print("RESULT " + json.dumps(result), flush=True)


def report(results, args):
    by = {r["variant"]: r for r in results}
    pairs = [
        ("ours-causal-infer", "strict-forward"),
        ("ours-bidirectional-infer", "strict-forward"),
        ("ours-causal-train", "strict-train"),
        ("ours-bidirectional-train", "strict-train"),
        ("ours-lora-train", "strict-train"),
        ("ours-causal-infer", "limit-forward"),
        ("ours-bidirectional-infer", "limit-forward"),
        ("ours-bidirectional-infer", "ours-causal-infer"),
        *[(v, "ours-causal-infer") for v in by if re.fullmatch(r"ours-layerwise\d+-infer", v)],
        ("ours-causal-train", "limit-train"),
        ("ours-bidirectional-train", "limit-train"),
        ("ours-lora-train", "limit-train"),
        ("ours-bidirectional-train", "ours-causal-train"),
        *[(v, "ours-causal-train") for v in by if re.fullmatch(r"ours-layerwise\d+-train", v)],
        *[(v, "ours-bidirectional-infer") for v in by if re.fullmatch(r"ours-output\d+-infer", v)],
        *[(v, "ours-bidirectional-train") for v in by if re.fullmatch(r"ours-output\d+-train", v)],
        *[(v, "ours-bidirectional-train") for v in by if re.fullmatch(r"ours-ckpt\d*-(freeze-)?train", v)],
        ("ours-freeze-train", "ours-bidirectional-train"),
        ("ours-bidirectional-train", "ours-thincadam-train"),
        ("ours-bidirectional-infer", "seed-infer"),
        ("ours-bidirectional-train", "seed-train"),
        ("ours-bidirectional-infer", "spacy-cnn-infer"),
        ("ours-bidirectional-train", "spacy-cnn-train"),
    ]
    ratios = {f"{a} / {b}": by[a]["words_per_s"] / by[b]["words_per_s"] for a, b in pairs if a in by and b in by}
    mem_key = "peak_gpu_allocated_mb" if args.gpu_id >= 0 else "peak_rss_mb"
    lines = [
        f"Model `{args.model}`, dtype {args.dtype}, {results[0]['docs']} docs / {results[0]['words']} words of "
        f"`{args.data}`, batches of {args.batch_docs} docs, median of {args.repeats} runs after a warm-up.",
        "",
        f"| variant | words/s | median s | peak memory (MB, {'GPU allocated' if args.gpu_id >= 0 else 'RSS'}) |",
        "|---|---|---|---|",
    ]
    lines += [f"| {r['variant']} | {r['words_per_s']:,.0f} | {r['median_s']:.2f} | {r[mem_key]:,.0f} |" for r in results]
    lines += ["", "| ratio | value |", "|---|---|"] + [f"| {k} | {v:.2f} |" for k, v in ratios.items()]
    text = "\n".join(lines) + "\n"
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps({"args": vars(args), "results": results, "ratios": ratios}, indent=2))
    out.with_suffix(".md").write_text(text)
    print(text)


def add_shared_arguments(parser, out_default):
    """The model, docs, batches and device options."""
    parser.add_argument("--model", default="../../assets/models/SmolLM2-135M")
    parser.add_argument("--tokenizer-from", default="../../assets/models/SmolLM2-135M",
                        help="for llama-3.2-1b-shape, tiny-shape and smollm2-shape")
    parser.add_argument("--data", default="corpus/full/dev.spacy")
    parser.add_argument("--out", default=out_default)
    parser.add_argument("--n-docs", type=int, default=256)
    parser.add_argument("--batch-docs", type=int, default=64, help="docs per batch (~1,000 CoNLL words)")
    parser.add_argument("--gpu-id", type=int, default=-1)
    parser.add_argument("--dtype", default="float32")


def tiny_shape(path: Path, tokenizer_dir: str) -> Path:
    """2 layers of width 64 with random weights (saved once) and the tokenizer and
    vocabulary of `tokenizer_dir`: a backbone that costs next to nothing."""
    if (path / "config.json").exists():
        return path
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaModel

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048)
    torch.manual_seed(0)
    LlamaModel(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def smollm2_shape(path: Path, tokenizer_dir: str) -> Path:
    """The model of `tokenizer_dir`'s config.json with random weights (saved once),
    and its tokenizer."""
    if (path / "config.json").exists():
        return path
    import torch
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    torch.manual_seed(0)
    AutoModel.from_config(AutoConfig.from_pretrained(tokenizer_dir)).save_pretrained(path)
    AutoTokenizer.from_pretrained(tokenizer_dir).save_pretrained(path)
    return path


SHAPES = {"llama-3.2-1b-shape": llama_1b_shape, "tiny-shape": tiny_shape, "smollm2-shape": smollm2_shape}


def resolve_model(args):
    """`--model llama-3.2-1b-shape`, `tiny-shape` or `smollm2-shape`: build (once per
    tokenizer) and use that shape."""
    if args.model in SHAPES:
        tokenizer = hashlib.md5(str(Path(args.tokenizer_from).resolve()).encode()).hexdigest()[:8]
        path = Path(tempfile.gettempdir()) / f"{args.model}-{tokenizer}"
        args.model = str(SHAPES[args.model](path, args.tokenizer_from))


def use_gpu(gpu_id):
    """spaCy and thinc on the GPU, with torch's allocator for both (so that torch's
    peak counts thinc's arrays too)."""
    import spacy
    from thinc.api import set_gpu_allocator

    spacy.require_gpu(gpu_id)
    set_gpu_allocator("pytorch")


PHASES = [
    "word pieces + alignment", "backbone forward", "transformer component, the rest", "optimizer: transformer",
    "NER (parser, listener)", "backbone backward", "optimizer: NER", "spaCy, the rest",
]


class Timers:
    """Seconds per phase; a phase timed inside another is taken out of the outer one."""

    def __init__(self, sync):
        self.sync = sync
        self.totals = defaultdict(float)
        self.stack = []

    @contextmanager
    def phase(self, name):
        self.sync()
        start = time.perf_counter()
        self.stack.append(0.0)  # time of phases nested in this one
        try:
            yield
        finally:
            self.sync()
            took = time.perf_counter() - start
            nested = self.stack.pop()
            self.totals[name] += took - nested
            if self.stack:
                self.stack[-1] += took


def wrap(owner, attribute, wrapper):
    """Replace owner.attribute by wrapper(original); returns an undo."""
    original = getattr(owner, attribute)
    setattr(owner, attribute, wrapper(original))
    return lambda: setattr(owner, attribute, original)


class TimedComponent:
    """A pipeline component whose update and finish_update are timed (spaCy's NER is
    a Cython class: its methods cannot be wrapped in place). `model` and
    `is_trainable` are properties, so spaCy's TrainableComponent check sees them."""

    def __init__(self, component, timers, update_phase, optimizer_phase):
        self.component = component
        self.timers = timers
        self.update_phase = update_phase
        self.optimizer_phase = optimizer_phase

    @property
    def model(self):
        return self.component.model

    @property
    def is_trainable(self):
        return self.component.is_trainable

    def update(self, *args, **kwargs):
        with self.timers.phase(self.update_phase):
            return self.component.update(*args, **kwargs)

    def finish_update(self, sgd):
        with self.timers.phase(self.optimizer_phase):
            return self.component.finish_update(sgd)

    def __getattr__(self, name):
        return getattr(self.component, name)


@contextmanager
def timed_phases(nlp, timers):
    from spacy_llama_ner.backbone import model as llama_model

    def timed(name):
        def wrapper(function):
            def run(*args, **kwargs):
                with timers.phase(name):
                    return function(*args, **kwargs)
            return run
        return wrapper

    def timed_shim(begin_update):
        def run(self, inputs):
            with timers.phase("backbone forward"):
                output, backprop = begin_update(self, inputs)

            def timed_backprop(grads):
                with timers.phase("backbone backward"):
                    return backprop(grads)
            return output, timed_backprop
        return run

    undo = [
        wrap(llama_model, "tokenize_spans", timed("word pieces + alignment")),
        wrap(llama_model, "align_spans", timed("word pieces + alignment")),
        wrap(llama_model.LlamaShim, "begin_update", timed_shim),
    ]
    components = list(nlp._components)
    phases = {"transformer": ("transformer component, the rest", "optimizer: transformer"),
              "ner": ("NER (parser, listener)", "optimizer: NER")}
    nlp._components = [(name, TimedComponent(proc, timers, *phases[name]) if name in phases else proc)
                       for name, proc in components]
    try:
        yield
    finally:
        nlp._components = components
        for undo_one in reversed(undo):
            undo_one()


def profile(args):
    """Where the time of one training step of args.profile goes (--profile)."""
    import torch
    from spacy.training import Example

    if args.gpu_id >= 0:
        use_gpu(args.gpu_id)
    torch.manual_seed(0)
    sync = torch.cuda.synchronize if args.gpu_id >= 0 else (lambda: None)
    docs = load_docs(args)
    if not docs:
        sys.exit(f"no docs in {args.data}")
    nlp = make_pipeline(args, args.profile)
    examples = [Example(nlp.make_doc(d.text), d) for d in docs]
    nlp.initialize(lambda: examples)
    optimizer = nlp.create_optimizer()
    batches = batches_of(examples, args.batch_docs)

    def one_pass():
        sync()
        start = time.perf_counter()
        for batch in batches:
            nlp.update(batch, sgd=optimizer)
        sync()
        return time.perf_counter() - start

    one_pass()  # warm-up
    plain = one_pass()  # no timers, no extra waits
    timers = Timers(sync)
    with timed_phases(nlp, timers):
        with timers.phase("spaCy, the rest"):
            profiled = one_pass()
    words = sum(len(d) for d in docs)
    per_batch = {name: timers.totals[name] / len(batches) for name in PHASES}
    rows = [f"| {name} | {1000 * s:,.1f} | {100 * s * len(batches) / profiled:.1f}% |" for name, s in per_batch.items()]
    device = torch.cuda.get_device_name(args.gpu_id) if args.gpu_id >= 0 else "CPU"
    text = "\n".join([
        f"`{args.profile}`, model `{args.model}`, dtype {args.dtype}, {device}; {len(docs)} docs / {words} words of `{args.data}` "
        f"in {len(batches)} batches of {args.batch_docs} docs, after a warm-up pass.",
        "",
        "| phase | ms per batch | share of the step |",
        "|---|---|---|",
        *rows,
        f"| **the step, timed by phase** | **{1000 * profiled / len(batches):,.1f}** | 100% |",
        f"| the step without the timers' waits | {1000 * plain / len(batches):,.1f} | {100 * plain / profiled:.0f}% |",
    ]) + "\n"
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".md").write_text(text)
    out.with_suffix(".json").write_text(json.dumps({
        "args": vars(args), "device": device, "batches": len(batches), "words": words,
        "seconds_per_batch": per_batch, "step_s": profiled / len(batches), "plain_step_s": plain / len(batches),
    }, indent=2))
    print(text)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_shared_arguments(parser, "metrics/benchmark")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--profile", metavar="VARIANT", help="split one training step of this ours-...-train variant into its phases")
    parser.add_argument("--variant", help=argparse.SUPPRESS)
    args = parser.parse_args()
    variants = args.variants.split(",")
    unknown = [v for v in variants if not VARIANT_NAME.fullmatch(v)]
    if unknown:
        parser.error(f"--variants: unknown {', '.join(map(repr, unknown))}; the names are listed at the top of "
                     f"scripts/benchmark.py, e.g. {', '.join(VARIANTS[:3])}, ours-ckpt8-freeze-train")
    if args.profile and not (args.profile.startswith("ours-") and args.profile.endswith("-train") and VARIANT_NAME.fullmatch(args.profile)):
        parser.error(f"--profile: {args.profile!r} is not one of the ours-...-train variants, "
                     "e.g. ours-bidirectional-train, ours-causal-train, ours-layerwise15-train, ours-ckpt8-train")
    resolve_model(args)
    if args.profile:
        return profile(args)
    if args.variant:
        return run_variant(args)
    results = []
    for variant in variants:
        cmd = [sys.executable, __file__, *sys.argv[1:], "--model", args.model, "--variant", variant]
        print(f"running {variant} ...", flush=True)
        proc = subprocess.run(cmd, capture_output=True, text=True)
        lines = [l for l in proc.stdout.splitlines() if l.startswith("RESULT ")]
        if proc.returncode or not lines:
            raise SystemExit(f"{variant} failed:\n{proc.stderr[-3000:]}")
        results.append(json.loads(lines[-1][len("RESULT "):]))
        print(f"  {results[-1]['words_per_s']:,.0f} words/s", flush=True)
    report(results, args)


if __name__ == "__main__":
    main()

"""Where the time of a training step goes: nlp.update of the pipeline (our transformer
+ spaCy's NER), split into its phases.

    python scripts/profile_step.py --model assets/models/SmolLM2-135M --data corpus/full/dev.spacy \
        --out metrics/profile-cpu [--gpu-id 0 --dtype bfloat16] [--n-docs 256 --batch-docs 64] \
        [--variant ours-layerwise15-train]

The same pipeline, docs and batches as scripts/benchmark.py's `--variant` (default
`ours-bidirectional-train`; any of its ours-...-train variants, e.g. causal, layer-wise
or checkpointed; `--model llama-3.2-1b-shape` builds the 1B shape there too, `--model
smollm2-shape` SmolLM2's with random weights, `--model tiny-shape` a backbone that
costs next to nothing, so the profile shows the step's cost outside it). One warm-up pass, then
one pass with a timer around each phase, in the order nlp.update runs them:

  word pieces + alignment   tokenizing the spans, aligning pieces to spaCy tokens
  backbone forward          our LlamaEncoder (embedding, layers, masks)
  transformer component, the rest   spans, the output batch, the hand-over to the
                            listener
  optimizer: transformer    the backbone's optimizer step (one fused torch AdamW step
                            for thinc's Adam, spacy_llama_ner/optimizer.py)
  NER (parser, listener)    spaCy's NER forward and backward, its oracle, the
                            listener's pooling (the backbone's backward, run from
                            inside it, is counted apart)
  backbone backward         torch's backward through the backbone
  optimizer: NER            thinc's Adam over the NER's parameters
  spaCy, the rest           nlp.update outside the components

On a GPU every timer waits for the device (torch.cuda.synchronize) so that each
phase's kernels are counted in it; the step time without those waits is measured
too, in a pass of its own. Writes OUT.md and OUT.json.
"""
import argparse
import json
import sys
import time
from collections import defaultdict
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchmark import (  # noqa: E402
    VARIANT_NAME, add_shared_arguments, batches_of, load_docs, make_pipeline, resolve_model, use_gpu,
)

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


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_shared_arguments(parser, "metrics/profile-cpu")
    parser.add_argument("--variant", default="ours-bidirectional-train")
    args = parser.parse_args()
    if not (args.variant.startswith("ours-") and args.variant.endswith("-train") and VARIANT_NAME.fullmatch(args.variant)):
        parser.error(f"--variant: {args.variant!r} is not one of scripts/benchmark.py's ours-...-train variants, "
                     "e.g. ours-bidirectional-train, ours-causal-train, ours-layerwise15-train, ours-ckpt8-train")
    resolve_model(args)

    import torch
    from spacy.training import Example

    if args.gpu_id >= 0:
        use_gpu(args.gpu_id)
    torch.manual_seed(0)
    sync = torch.cuda.synchronize if args.gpu_id >= 0 else (lambda: None)
    docs = load_docs(args)
    if not docs:
        sys.exit(f"no docs in {args.data}")
    nlp = make_pipeline(args, args.variant)
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
        f"`{args.variant}`, model `{args.model}`, dtype {args.dtype}, {device}; {len(docs)} docs / {words} words of `{args.data}` "
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


if __name__ == "__main__":
    main()

"""Adapt a decoder to bidirectional attention before the task: masked next-token prediction.

    python -m spacy_llama_ner.adapt MODEL TEXT OUTPUT_DIR [--steps 1000] [--lora-r 16] ...

LLM2Vec's recipe (BehnamGhader et al., 2024): switch every layer (or those from
--bidirectional-from-layer up) to bidirectional attention, replace a share of the word
pieces of each text with a mask piece, and train the model to predict each masked piece
from the output at the position before it, through the model's own LM head. The model
learns to use the right context it now sees, on raw text, before any NER training.

MODEL is a model directory, a .gguf file or a hub id; TEXT a plain-text file (one text
per line) or a .spacy file (the texts of its Docs, e.g. corpus/full/train.spacy). The
last --held-out share of the texts is never trained on: its loss, with a fixed masking,
is measured before, during and after. OUTPUT_DIR is a Hugging Face model directory
(LoRA merged into the weights) that `name` in spacy_llama_ner.LlamaTransformer.v1
accepts, with adapt_log.jsonl (loss per step, held-out loss) and adapt.json (settings,
losses, time, peak memory).
"""
import argparse
import json
import random
import resource
import sys
import time
from pathlib import Path
from typing import List, Optional

import torch

from .conll import ConllFormatError, read_utf8
from .backbone.encoder import LlamaEncoder
from .backbone.loading import check_llama_family, load_model_config, load_tokenizer, resolve_source
from .backbone.lora import add_lora
from .settings import ConfigError, LoraSettings

# LLM2Vec adapts the attention and the MLP projections (training's LoRA default is attention only)
ADAPT_LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


class AdaptError(Exception):
    """A user mistake, named in one line."""


def read_texts(path: Path) -> List[str]:
    if not path.is_file():
        raise AdaptError(f"text file not found: {path}")
    if path.suffix == ".spacy":
        import spacy
        from spacy.tokens import DocBin

        texts = [doc.text for doc in DocBin().from_disk(path).get_docs(spacy.blank("xx").vocab)]
    else:
        try:
            texts = read_utf8(path).splitlines()
        except ConllFormatError as err:
            raise AdaptError(str(err)) from None
    texts = [t for t in texts if t.strip()]
    if len(texts) < 2:
        raise AdaptError(f"{path} has {len(texts)} non-empty text(s); adaptation needs at least 2 (one held out)")
    return texts


def mask_id_of(tokenizer) -> int:
    """The tokenizer's mask piece, else "_" as LLM2Vec uses for LLaMA models."""
    token = tokenizer.mask_token or "_"
    token_id = tokenizer.convert_tokens_to_ids(token)
    if token_id is None or token_id == tokenizer.unk_token_id:
        raise AdaptError(f"the tokenizer has no mask piece and no single piece for {token!r}")
    return token_id


def masked_batch(tokenizer, texts: List[str], max_length: int, mask_prob: float, mask_id: int, rng: torch.Generator):
    """input_ids with masked pieces, attention_mask, and labels (-100 where nothing is to predict)."""
    enc = tokenizer(texts, max_length=max_length, truncation=True, padding=True, return_tensors="pt",
                    return_special_tokens_mask=True)
    ids, attention = enc["input_ids"], enc["attention_mask"]
    candidates = (attention == 1) & (enc["special_tokens_mask"] == 0)
    candidates[:, 0] = False  # the first position has no position before it to predict from
    chosen = (torch.rand(ids.shape, generator=rng) < mask_prob) & candidates
    for row in range(ids.shape[0]):  # at least one masked piece per text that has a candidate
        if not chosen[row].any() and candidates[row].any():
            options = candidates[row].nonzero().flatten()
            chosen[row, options[torch.randint(len(options), (1,), generator=rng)]] = True
    labels = torch.where(chosen, ids, torch.full_like(ids, -100))
    return ids.masked_fill(chosen, mask_id), attention, labels


def length_grouped_batches(texts: List[str], batch_size: int, rng: random.Random, pool_batches: int = 50) -> List[List[str]]:
    """One pass over texts in batches of similar length (less padding), in random order:
    shuffle, sort by length within pools of pool_batches batches, shuffle the batches."""
    shuffled = rng.sample(texts, len(texts))
    pool = batch_size * pool_batches
    batches = []
    for start in range(0, len(shuffled), pool):
        chunk = sorted(shuffled[start : start + pool], key=len)
        batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return batches


def mntp_loss(encoder: LlamaEncoder, lm_head: torch.nn.Module, ids, attention, labels) -> torch.Tensor:
    """Each masked piece i is predicted from the output at i-1 (the model was trained to
    predict the next piece there)."""
    hidden = encoder(ids, attention)
    logits = lm_head(hidden[:, :-1].to(lm_head.weight.dtype)).float()
    return torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1))


def merge_lora(model: torch.nn.Module) -> None:
    """Fold each LoRA adapter into its base weight and put the plain layer back."""
    from peft.tuners.lora import LoraLayer

    for name, module in [(n, m) for n, m in model.named_modules() if isinstance(m, LoraLayer)]:
        module.merge()
        parent_name, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent_name) if parent_name else model, child, module.get_base_layer())


def held_out_loss(encoder, lm_head, batches) -> float:
    encoder.eval()
    with torch.no_grad():
        losses = [mntp_loss(encoder, lm_head, *batch).item() for batch in batches]
    encoder.train()
    return sum(losses) / len(losses)


def adapt(model: str, text: Path, output: Path, *, steps: int = 1000, batch_size: int = 32, max_length: int = 128,
          mask_prob: float = 0.2, learn_rate: float = 5e-5, warmup_steps: int = 100, lora_r: int = 16,
          lora_alpha: Optional[int] = None, bidirectional_from_layer: int = 0, held_out: float = 0.05,
          eval_every: int = 100, seed: int = 0, lora_target_modules=ADAPT_LORA_TARGETS, progress_bar: bool = True) -> dict:
    from tqdm import tqdm
    from transformers import AutoModelForCausalLM, get_linear_schedule_with_warmup

    for name, value, low in (("--steps", steps, 1), ("--batch-size", batch_size, 1), ("--max-length", max_length, 2),
                             ("--eval-every", eval_every, 1), ("--lora-r", lora_r, 0)):
        if value < low:
            raise AdaptError(f"{name} must be at least {low}, got {value}")
    if not 0 < mask_prob < 1 or not 0 < held_out < 1:
        raise AdaptError(f"--mask-prob and --held-out must be between 0 and 1, got {mask_prob} and {held_out}")
    if output.exists() and any(output.iterdir()):
        raise AdaptError(f"{output} exists and is not empty: choose a new OUTPUT_DIR")
    texts = read_texts(text)
    source, gguf_file = resolve_source(model)
    kwargs = {"gguf_file": gguf_file} if gguf_file else {}
    config = load_model_config(source, model, kwargs)
    check_llama_family(config, model)
    layers = config.num_hidden_layers
    if not 0 <= bidirectional_from_layer < layers:
        raise AdaptError(f"--bidirectional-from-layer must be from 0 to {layers - 1} (the model has {layers} layers)")
    tokenizer = load_tokenizer(source, model, kwargs)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    tokenizer.padding_side = "right"
    mask_id = mask_id_of(tokenizer)

    torch.manual_seed(seed)
    lm, loading = AutoModelForCausalLM.from_pretrained(
        source, torch_dtype=torch.float32, attn_implementation="sdpa", output_loading_info=True, **kwargs
    )
    if "lm_head.weight" in loading["missing_keys"] and not config.tie_word_embeddings:
        raise AdaptError(
            f"{model} has no LM head (a backbone saved without it, e.g. by spacy_llama_ner.convert_gguf, "
            "and its embeddings are not tied): masked next-token prediction needs the trained head. "
            "Give the .gguf file or the original model directory instead"
        )
    if lora_r:  # the same LoRA as training's (spacy_llama_ner.backbone.lora), merged at the end
        lora = LoraSettings(r=lora_r, alpha=lora_alpha or 2 * lora_r, dropout=0.05, target_modules=list(lora_target_modules))
        try:
            add_lora(lm.model, lora)
        except ConfigError as err:
            raise AdaptError(f"--lora-target-modules {' '.join(lora_target_modules)}: {str(err).split(': ', 1)[1]}") from None
        for param in lm.get_output_embeddings().parameters():  # a head not tied to the embeddings stays frozen too
            param.requires_grad_(False)
    encoder = LlamaEncoder(lm.model, [i < bidirectional_from_layer for i in range(layers)])
    lm_head = lm.get_output_embeddings()

    shuffled = texts[:]
    random.Random(seed).shuffle(shuffled)
    n_held = max(1, int(len(shuffled) * held_out))
    held, train = shuffled[-n_held:], shuffled[:-n_held]
    held_rng = torch.Generator().manual_seed(seed + 1)
    scored = sorted(held[:512], key=len)  # the held-out loss reads up to 512, similar lengths together
    held_batches = [masked_batch(tokenizer, scored[i : i + batch_size], max_length, mask_prob, mask_id, held_rng)
                    for i in range(0, len(scored), batch_size)]
    train_rng = torch.Generator().manual_seed(seed)
    trainable = [p for p in lm.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=learn_rate, weight_decay=0.0)
    schedule = get_linear_schedule_with_warmup(optimizer, min(warmup_steps, steps // 2), steps)

    output.mkdir(parents=True, exist_ok=True)
    log = open(output / "adapt_log.jsonl", "w", encoding="utf-8")
    start = time.perf_counter()
    before = held_out_loss(encoder, lm_head, held_batches)
    log.write(json.dumps({"step": 0, "held_out_loss": before}) + "\n")
    sampler = random.Random(seed)
    batches: List[List[str]] = []
    bar = tqdm(range(1, steps + 1), desc="adapt (MNTP)", disable=not progress_bar, dynamic_ncols=True)
    for step in bar:
        if not batches:
            batches = length_grouped_batches(train, batch_size, sampler)
        batch = batches.pop()
        loss = mntp_loss(encoder, lm_head, *masked_batch(tokenizer, batch, max_length, mask_prob, mask_id, train_rng))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        entry = {"step": step, "loss": loss.item(), "learn_rate": schedule.get_last_lr()[0]}
        if step % eval_every == 0 or step == steps:
            entry["held_out_loss"] = held_out_loss(encoder, lm_head, held_batches)
        log.write(json.dumps(entry) + "\n")
        bar.set_postfix(loss=f"{entry['loss']:.3f}", **({"held_out": f"{entry['held_out_loss']:.3f}"} if "held_out_loss" in entry else {}))
    log.close()
    after = entry["held_out_loss"]
    seconds = time.perf_counter() - start
    if lora_r:
        merge_lora(lm)
    lm.save_pretrained(output)
    tokenizer.save_pretrained(output)
    report = {
        "model": model, "text": str(text), "texts_trained": len(train), "texts_held_out": len(held), "steps": steps,
        "batch_size": batch_size, "max_length": max_length, "mask_prob": mask_prob, "learn_rate": learn_rate,
        "warmup_steps": warmup_steps, "lora_r": lora_r, "lora_target_modules": list(lora_target_modules) if lora_r else [], "bidirectional_from_layer": bidirectional_from_layer,
        "seed": seed, "held_out_loss_before": before, "held_out_loss_after": after, "seconds": round(seconds, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }
    (output / "adapt.json").write_text(json.dumps(report, indent=1))
    return report


def main(argv=None, prog: str = "python -m spacy llama-ner adapt") -> int:
    p = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    p.add_argument("model", help="a model directory, a .gguf file or a hub id")
    p.add_argument("text", type=Path, help="plain text (one text per line) or a .spacy file")
    p.add_argument("output", type=Path, help="the adapted model's directory (new or empty)")
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--batch-size", type=int, default=32, help="texts per step (default: 32)")
    p.add_argument("--max-length", type=int, default=128, help="pieces per text, longer ones cut (default: 128)")
    p.add_argument("--mask-prob", type=float, default=0.2, help="share of pieces masked (default: 0.2)")
    p.add_argument("--learn-rate", type=float, default=5e-5)
    p.add_argument("--warmup-steps", type=int, default=100)
    p.add_argument("--lora-r", type=int, default=16, help="LoRA rank, merged at the end; 0 trains all weights (default: 16)")
    p.add_argument("--lora-alpha", type=int, default=None, help="default: 2 × r")
    p.add_argument("--lora-target-modules", nargs="+", default=list(ADAPT_LORA_TARGETS), metavar="NAME",
                   help=f"linear modules that get adapters (default: {' '.join(ADAPT_LORA_TARGETS)})")
    p.add_argument("--bidirectional-from-layer", type=int, default=0, help="layers below it stay causal (default: 0)")
    p.add_argument("--held-out", type=float, default=0.05, help="share of texts held out for the loss (default: 0.05)")
    p.add_argument("--eval-every", type=int, default=100, help="steps between held-out losses (default: 100)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-progress", dest="progress_bar", action="store_false")
    args = vars(p.parse_args(argv))
    try:
        report = adapt(args.pop("model"), args.pop("text"), args.pop("output"), **args)
    except (AdaptError, ConfigError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"held-out MNTP loss {report['held_out_loss_before']:.3f} -> {report['held_out_loss_after']:.3f} "
          f"in {report['steps']} steps, {report['seconds']:.0f} s, peak RSS {report['peak_rss_mb']:,} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())

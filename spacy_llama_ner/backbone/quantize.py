"""quantize = "int8": the decoder's linear layers as int8 on the CPU, for inference.

PyTorch's dynamic int8 quantization (weights int8 per output channel, activations
quantized per tensor on the fly, fbgemm/x86 kernels) of every projection loses the
entities of a LLaMA-family model: a few input channels carry values up to 1e3-1e4, and
one scale per tensor leaves the other channels a handful of levels (measured on
SmolLM2-135M: the last hidden state moves by a median 0.55 of its norm). Two steps keep it:

1. SmoothQuant (Xiao et al. 2023): divide each input channel j of a projection by
   s_j = max|x_j|^a / max|W_j|^(1-a), measured on a few calibration sentences, and
   multiply column j of the weight by s_j. The product is unchanged, and the division
   folds into the weights that make x: the RMSNorm gain before q/k/v and gate/up. An
   exact rewrite (float32 outputs change by ~1e-6); the outliers move into the weights,
   which int8 quantizes per channel.
2. down_proj stays float32: its input, gate * up of the SwiGLU, has the largest
   outliers (3e3 in SmolLM2's layer 11) and no norm to fold a scale into (measured:
   median change 0.09 of the norm with it kept float32).

The saved pipeline keeps float32 weights: a quantized model refuses to be saved, and
to train.
"""
import ctypes
import time
import warnings
from typing import Dict

import torch

from ..settings import ConfigError

SMOOTHING_ALPHA = 0.7
KEEP_FLOAT32 = ("mlp.down_proj",)
# Sentences written for this (no dataset's text): names, places, numbers, punctuation.
CALIBRATION_TEXTS = [
    "The committee met in Geneva on Tuesday to discuss the new trade agreement.",
    "Maria Gonzalez, a spokeswoman for the company, said profits rose 12 percent in 1997.",
    "Shares of Acme Corp fell sharply after the report was published in New York.",
    "He scored twice in the second half as Liverpool beat Arsenal 3-1 at home.",
    "The United Nations sent a team to the border region late on Friday night.",
    "Prime Minister John Howard told reporters in Sydney that talks would continue.",
    "Rain is expected across northern France and Belgium over the weekend.",
    "BERLIN 1996-08-22 German industrial output grew by 0.8 percent in June.",
    "Dr. Chen joined the University of Toronto after ten years at Microsoft Research.",
    "Police in Cairo arrested three men suspected of smuggling antiques to Italy.",
    "the results , published in the journal Nature , surprised many scientists .",
    "Tokyo stocks closed higher, led by Toyota and Sony, while the yen weakened.",
]


def check_runs_here(device_type: str) -> None:
    if device_type != "cpu":
        raise ConfigError(
            "quantize",
            f'"int8" runs on the CPU (fbgemm kernels), not on {device_type}; on a GPU use dtype = "bfloat16" instead',
        )


@torch.no_grad()
def input_maxima(encoder, tokenizer, pad_id: int) -> Dict[str, torch.Tensor]:
    """Per decoder linear layer, the largest |value| of each input channel over the
    calibration sentences, read by forward hooks."""
    maxima: Dict[str, torch.Tensor] = {}

    def hook(name):
        def record(module, inputs, output):
            x = inputs[0].detach().abs().reshape(-1, inputs[0].shape[-1]).amax(0).float()
            maxima[name] = torch.maximum(maxima[name], x) if name in maxima else x
        return record

    handles = [m.register_forward_hook(hook(n)) for n, m in encoder.backbone.layers.named_modules()
               if isinstance(m, torch.nn.Linear)]
    try:
        batch = tokenizer(CALIBRATION_TEXTS, padding=False)["input_ids"]
        length = max(map(len, batch))
        ids = torch.full((len(batch), length), pad_id, dtype=torch.long)
        mask = torch.zeros((len(batch), length), dtype=torch.bool)
        for i, row in enumerate(batch):
            ids[i, : len(row)] = torch.tensor(row)
            mask[i, : len(row)] = True
        encoder(ids, mask)
    finally:
        for handle in handles:
            handle.remove()
    return maxima


@torch.no_grad()
def smooth(layer, prefix: str, maxima: Dict[str, torch.Tensor], alpha: float = SMOOTHING_ALPHA) -> None:
    """Fold SmoothQuant scales of q/k/v and gate/up into the RMSNorm gains before them."""
    groups = (
        (layer.input_layernorm, [layer.self_attn.q_proj, layer.self_attn.k_proj, layer.self_attn.v_proj], "self_attn.q_proj"),
        (layer.post_attention_layernorm, [layer.mlp.gate_proj, layer.mlp.up_proj], "mlp.gate_proj"),
    )
    for norm, projections, name in groups:
        act = maxima[f"{prefix}{name}"].clamp(min=1e-5)
        weight = torch.cat([p.weight.abs().float() for p in projections], 0).amax(0).clamp(min=1e-5)
        scale = (act.pow(alpha) / weight.pow(1 - alpha)).clamp(min=1e-5)
        norm.weight.div_(scale.to(norm.weight.dtype))
        for p in projections:
            p.weight.mul_(scale.to(p.weight.dtype))


@torch.no_grad()
def quantize_int8(encoder, tokenizer, pad_id: int) -> dict:
    """Smooth, then quantize every decoder linear layer but down_proj to dynamic int8, in
    place. Returns what was done, for the one-line report."""
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    start = time.perf_counter()
    encoder.eval()
    maxima = input_maxima(encoder, tokenizer, pad_id)
    for i, layer in enumerate(encoder.backbone.layers):
        smooth(layer, f"{i}.", maxima)
    names = [n for n, m in encoder.backbone.layers.named_modules() if isinstance(m, torch.nn.Linear)]
    quantized = [n for n in names if not n.endswith(KEEP_FLOAT32)]
    with warnings.catch_warnings():  # torch.ao's notice that the API moves to torchao one day
        warnings.simplefilter("ignore")
        for i, layer in enumerate(encoder.backbone.layers):  # a layer at a time: see release_freed_memory
            qconfig = {n.split(".", 1)[1]: per_channel_dynamic_qconfig for n in quantized if n.startswith(f"{i}.")}
            seen = list(layer.modules())
            quantize_dynamic(layer, qconfig, dtype=torch.qint8, inplace=True)
            for module in seen + list(layer.modules()):
                # torch.ao leaves each module it saw a qconfig holding a closure over the
                # module itself: a reference cycle that would keep every replaced float32
                # Linear, weights and all, until the garbage collector happens to run
                module.__dict__.pop("qconfig", None)
            del seen
            release_freed_memory()
    for p in encoder.parameters():
        p.requires_grad_(False)
    return {"quantized": len(quantized), "float32": len(names) - len(quantized),
            "seconds": time.perf_counter() - start}


def release_freed_memory() -> None:
    """Give the memory of the float32 weights just replaced back to the operating system.
    glibc's allocator keeps freed blocks inside the heap, where the process's RSS still
    counts them: without this, quantizing adds the int8 weights to a float32 model's
    memory instead of replacing its weights (measured on SmolLM2-135M: +84 MB RSS after
    loading, where giving them back makes it -220 MB).
    Elsewhere than glibc (macOS, musl) the allocator is left to do as it does."""
    try:
        trim = ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return
    trim(0)

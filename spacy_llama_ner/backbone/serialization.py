"""Save and load a backbone inside a spaCy pipeline, without the 4 GiB blob limit.

spacy-transformers stores config, tokenizer and one torch.save blob as a single
msgpack bin, which caps a model at 4 GiB (a 1B model in float32 is about 5 GB),
and reloads with a non-strict fallback that can leave random weights. Here the
weights travel as safetensors shards of at most MAX_SHARD_BYTES each, and the
state dict must match the rebuilt model exactly.
"""
import dataclasses
import tempfile
from pathlib import Path
from typing import Dict, List, Optional

import torch
from accelerate import init_empty_weights
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors
from transformers import AutoModel, AutoTokenizer, PretrainedConfig
from transformers.models.auto.configuration_auto import CONFIG_MAPPING

from transformers import __version__ as transformers_version

from ..settings import LoraSettings
from .loading import LLAMA_FAMILY

FORMAT_VERSION = 1
# msgpack's bin type holds at most 4 GiB - 1; a small shard also keeps loading's peak low
# (shards_to_state). Pipelines saved with larger shards load as before.
MAX_SHARD_BYTES = 64 * 1024**2


def tokenizer_to_files(tokenizer) -> Dict[str, bytes]:
    with tempfile.TemporaryDirectory() as tmp:
        tokenizer.save_pretrained(tmp)
        return {p.name: p.read_bytes() for p in Path(tmp).iterdir() if p.is_file()}


def check_file_name(name) -> str:
    """`name` if it is a plain file name; a pipeline file that names a path (absolute, with
    a directory, `..`) would make loading write outside the temporary directory."""
    plain = (
        isinstance(name, str)
        and name not in ("", ".", "..")
        and "/" not in name
        and "\\" not in name
        and "\0" not in name
        and Path(name).name == name
        and not Path(name).is_absolute()
    )
    if not plain:
        raise ValueError(
            f"The pipeline's transformer names a tokenizer file {name!r}, which is not a plain file name: "
            "the pipeline file is damaged or was crafted to write elsewhere; it is not loaded"
        )
    return name


def tokenizer_from_files(files: Dict[str, bytes]):
    names = [check_file_name(name) for name in files]  # all checked before anything is written
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            (Path(tmp) / name).write_bytes(files[name])
        return AutoTokenizer.from_pretrained(tmp, use_fast=True)


def state_to_shards(state: Dict[str, torch.Tensor], max_bytes: int = None) -> List[bytes]:
    """Split a state dict into safetensors blobs of at most `max_bytes` each
    (a single tensor larger than that gets a shard of its own)."""
    max_bytes = MAX_SHARD_BYTES if max_bytes is None else max_bytes
    shards, current, size = [], {}, 0
    for name, tensor in state.items():
        nbytes = tensor.numel() * tensor.element_size()
        if current and size + nbytes > max_bytes:
            shards.append(save_safetensors(current))
            current, size = {}, 0
        current[name] = tensor.detach().contiguous().cpu()
        size += nbytes
    if current:
        shards.append(save_safetensors(current))
    return shards


def shards_to_state(shards: List[bytes]) -> Dict[str, torch.Tensor]:
    """The state dict of the shards, emptying the list as it goes: the tensors are copies,
    and a shard the message no longer holds is freed at once, so the peak holds the
    model's tensors and the shards not yet read, not both in full."""
    state: Dict[str, torch.Tensor] = {}
    if not isinstance(shards, list):
        shards = list(shards)
    shards.reverse()  # pop from the end: each pop is O(1)
    while shards:
        state.update(load_safetensors(shards.pop()))
    return state


def config_from_dict(data: Dict) -> PretrainedConfig:
    model_type = data.get("model_type") if isinstance(data, dict) else None
    if model_type not in CONFIG_MAPPING:
        raise ValueError(
            f"The pipeline's transformer was saved with model_type {model_type!r}, which this transformers "
            f"version ({transformers_version}) does not know; spacy_llama_ner supports {list(LLAMA_FAMILY)}. "
            "Load it with the transformers version it was saved with, or retrain."
        )
    return CONFIG_MAPPING[model_type].from_dict(data)


def empty_backbone(config: PretrainedConfig, attn_implementation: str) -> torch.nn.Module:
    """The model's structure with weights on the meta device (buffers real), to be
    filled by `load_state_dict(..., assign=True)`."""
    with init_empty_weights(include_buffers=False):
        return AutoModel.from_config(config, attn_implementation=attn_implementation)


def load_state_strict(module: torch.nn.Module, state: Dict[str, torch.Tensor]) -> None:
    result = module.load_state_dict(state, strict=False, assign=True)
    if result.missing_keys or result.unexpected_keys:
        raise ValueError(
            "The saved transformer weights do not match the model built from the "
            f"pipeline's config: missing {result.missing_keys[:5]}, unexpected "
            f"{result.unexpected_keys[:5]}. Was the [components.transformer.model] "
            "block (lora settings) edited after saving?"
        )


def load_layer_mix(encoder: torch.nn.Module, saved: Optional[List[float]]) -> None:
    """Put the saved layer-mix logits into `encoder`, built from the config's
    layer_mix; the two must agree, or the features would silently change."""
    mix = encoder.layer_mix_logits
    if (saved is None) != (mix is None):
        raise ValueError(
            f"The transformer was saved with layer_mix = {saved is not None} but the pipeline's config "
            f"now says layer_mix = {mix is not None}. It cannot be switched in a saved pipeline: "
            "restore the [components.transformer.model] layer_mix setting, or retrain."
        )
    if saved is None:
        return
    if len(saved) != len(mix):
        raise ValueError(
            f"The transformer's saved layer mix has {len(saved)} weights for {len(mix)} layers: "
            "the pipeline file is damaged; retrain or re-save it."
        )
    with torch.no_grad():
        mix.copy_(torch.tensor(saved, dtype=mix.dtype))


# LoRA keys that decide the saved weights' shapes (r, target_modules) or every
# prediction (alpha scales the adapters' output). dropout only acts in training,
# so a loaded pipeline may change it (e.g. to train on without dropout).
LORA_KEYS_FIXED_AT_SAVE = ("r", "alpha", "target_modules")


def lora_to_saved(lora: Optional[LoraSettings]) -> Optional[Dict]:
    return dataclasses.asdict(lora) if lora else None


def check_lora_unchanged(saved: Optional[Dict], current: Optional[LoraSettings]) -> None:
    """Name each LoRA setting of the config that differs from the one the weights
    were saved with: loading would fail on shapes, or silently change outputs."""
    now = lora_to_saved(current)
    if (saved is None) != (now is None):
        raise ValueError(
            f"The transformer was saved with lora = {saved} but the pipeline's config now "
            f"says lora = {now}. LoRA cannot be switched on or off in a saved pipeline: "
            "restore the [components.transformer.model] lora block, or retrain."
        )
    if saved is None:
        return
    changed = [
        f"lora.{key}: saved with {saved[key]!r}, config says {now[key]!r}"
        for key in LORA_KEYS_FIXED_AT_SAVE
        if saved[key] != now[key]
    ]
    if changed:
        raise ValueError(
            "The pipeline's [components.transformer.model] lora block was edited after "
            f"saving: {'; '.join(changed)}. The saved adapters only work with the settings "
            "they were trained with: restore them, or retrain (only lora.dropout may change)."
        )

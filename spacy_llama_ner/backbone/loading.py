"""Find, check and load a LLaMA-family backbone and its tokenizer.

A `name` is one of: a local Hugging Face model directory, a `.gguf` file, or a
hub id (resolved through the local Hugging Face cache; nothing is downloaded
when HF_HUB_OFFLINE=1).
"""
import os
import re
from pathlib import Path
from typing import Tuple

import torch
from transformers import AutoConfig, AutoModel, AutoTokenizer, PretrainedConfig
from transformers import PreTrainedTokenizerFast
from wasabi import msg

from ..settings import BackboneSettings, ConfigError

# Decoder families whose layers, rotary embeddings and attention modules have the
# shape LlamaEncoder drives (checked by the tests for each of them).
LLAMA_FAMILY = ("llama", "mistral", "qwen2")
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
TORCH_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def load_backbone(settings: BackboneSettings) -> Tuple[PreTrainedTokenizerFast, torch.nn.Module]:
    """Load tokenizer and base model (no LM head) as `settings.name` says."""
    source, gguf_file = resolve_source(settings.name)
    kwargs = {"gguf_file": gguf_file} if gguf_file else {}
    where = f"{source}/{gguf_file}" if gguf_file else source
    config = load_model_config(source, where, kwargs)
    check_llama_family(config, where)
    tokenizer = load_tokenizer(source, where, kwargs)
    msg.info(f"Loading {config.model_type} backbone from {where}" + (" (de-quantizing GGUF)" if gguf_file else ""))
    model = AutoModel.from_pretrained(
        source,
        config=config,
        torch_dtype=storage_dtype(settings),
        attn_implementation=settings.attn_implementation,
        **kwargs,
    )
    return tokenizer, model


def resolve_source(name: str) -> Tuple[str, str]:
    """Return (directory or hub id, gguf file name or "")."""
    path = Path(name).expanduser()
    if path.is_file():
        if path.suffix.lower() != ".gguf":
            raise ConfigError(
                "name", f"{path} is a file but not a .gguf file; give a model directory, a .gguf file or a hub id"
            )
        return str(path.resolve().parent), path.name
    if path.is_dir():
        if not (path / "config.json").exists():
            raise ConfigError("name", f"{path.resolve()} is a directory without config.json: not a Hugging Face model directory")
        return str(path.resolve()), ""
    if name.lower().endswith(".gguf") or not _HUB_ID.match(name) or name.startswith((".", "~")):
        raise ConfigError("name", f"model path not found: {path.resolve()}")
    return name, ""


def check_llama_family(config: PretrainedConfig, where: str) -> None:
    if config.model_type not in LLAMA_FAMILY:
        raise ConfigError(
            "name",
            f"{where} is a {config.model_type!r} model; spacy_llama_ner supports the LLaMA family: {list(LLAMA_FAMILY)}",
        )


def check_dtype_runs(dtype_name: str, device: torch.device) -> None:
    """Fail early, naming the setting, if `dtype` cannot compute on `device`."""
    if device.type == "cuda" and dtype_name == "bfloat16" and not torch.cuda.is_bf16_supported():
        raise ConfigError("dtype", f"bfloat16 does not run on {torch.cuda.get_device_name(device)}; use float16 or float32")
    try:
        with torch.autocast(device.type, dtype=TORCH_DTYPES[dtype_name], enabled=dtype_name != "float32"):
            ones = torch.ones(2, 2, device=device)
            (ones @ ones).sum().item()
    except RuntimeError as err:
        raise ConfigError("dtype", f"{dtype_name} does not run on {device}: {err}; use float32") from err


def storage_dtype(settings: BackboneSettings) -> torch.dtype:
    """Weights the optimizer updates stay float32 (thinc's optimizer and torch2xp
    need it); only frozen base weights under LoRA are stored in `dtype`."""
    return TORCH_DTYPES[settings.dtype] if settings.lora else torch.float32


def load_model_config(source: str, where: str, kwargs) -> PretrainedConfig:
    """The model's config, or a ConfigError naming `where` and what to do."""
    try:
        if kwargs.get("gguf_file"):
            check_gguf_architecture(Path(source) / kwargs["gguf_file"])
        return AutoConfig.from_pretrained(source, **kwargs)
    except ConfigError:
        raise
    except OSError as err:
        if Path(source).exists():
            raise ConfigError("name", f"could not read the model config in {where}: {err}") from err
        offline = os.environ.get("HF_HUB_OFFLINE") == "1"
        raise ConfigError(
            "name",
            f"{source!r} is neither a local path nor a hub id found in the local cache"
            + (" (HF_HUB_OFFLINE=1)" if offline else "")
            + ". Download the model once (e.g. `huggingface-cli download "
            f"{source} --local-dir assets/models/NAME`) and set name to that local directory.",
        ) from err
    except ValueError as err:  # e.g. an unknown model_type or an unreadable GGUF
        raise ConfigError("name", f"{where} is not a model transformers can read: {err}") from err


def check_gguf_architecture(path: Path) -> None:
    from gguf import GGUFReader

    try:
        reader = GGUFReader(str(path))
        field = reader.fields["general.architecture"]
        arch = bytes(field.parts[field.data[0]]).decode()
    except Exception as err:  # the gguf reader raises many kinds on a damaged file
        raise ConfigError("name", f"{path} is not a readable GGUF file ({type(err).__name__}: {err})") from err
    if arch not in LLAMA_FAMILY:
        raise ConfigError(
            "name", f"{path} holds a {arch!r} model; spacy_llama_ner supports the LLaMA family: {list(LLAMA_FAMILY)}"
        )


def load_tokenizer(source: str, where: str, kwargs) -> PreTrainedTokenizerFast:
    tokenizer = AutoTokenizer.from_pretrained(source, use_fast=True, **kwargs)
    if not isinstance(tokenizer, PreTrainedTokenizerFast):
        raise ConfigError("name", f"{where} has no fast tokenizer (tokenizer.json); word-piece offsets need one")
    if kwargs.get("gguf_file"):
        # The GGUF tokenizer points vocab_file at the whole .gguf; saving would copy it.
        tokenizer.vocab_file = None
    return tokenizer

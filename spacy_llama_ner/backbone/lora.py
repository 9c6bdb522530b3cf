"""LoRA adapters (peft) on a backbone whose base weights stay frozen."""
import torch
from peft import LoraConfig, inject_adapter_in_model

from ..settings import ConfigError, LoraSettings


def add_lora(backbone: torch.nn.Module, lora: LoraSettings) -> torch.nn.Module:
    """Inject LoRA into `backbone` in place; only the adapters stay trainable, in float32."""
    linear_names = sorted(
        {name.rsplit(".", 1)[-1] for name, module in backbone.named_modules() if isinstance(module, torch.nn.Linear)}
    )
    missing = [t for t in lora.target_modules if t not in linear_names]
    if missing:
        raise ConfigError(
            "lora.target_modules",
            f"{missing} not found in the model; its linear modules are {linear_names}",
        )
    config = LoraConfig(
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=list(lora.target_modules),
        bias="none",
    )
    backbone = inject_adapter_in_model(config, backbone)
    for name, param in backbone.named_parameters():
        param.requires_grad = "lora_" in name
        if param.requires_grad and param.dtype != torch.float32:
            param.data = param.data.float()
    return backbone


def merge_lora(backbone: torch.nn.Module) -> None:
    """Fold every LoRA adapter into its base layer, in place, and put the plain layer
    back: the model computes the same, with no adapter left (for int8 inference)."""
    from peft.tuners.lora import LoraLayer

    for name, module in list(backbone.named_modules()):
        if isinstance(module, LoraLayer):
            module.merge()
            parent_name, _, child = name.rpartition(".")
            setattr(backbone.get_submodule(parent_name) if parent_name else backbone, child, module.get_base_layer())

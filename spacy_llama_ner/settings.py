"""The settings of the LlamaTransformer architecture, checked before anything loads."""
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Union

ATTENTION_MODES = ("causal", "bidirectional", "echo")
DTYPES = ("float32", "bfloat16", "float16")
ATTN_IMPLEMENTATIONS = ("sdpa", "eager", "flash_attention_2")
LORA_KEYS = ("r", "alpha", "dropout", "target_modules")
QUANTIZE_MODES = (None, "int8")
DEFAULT_LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj")


class ConfigError(ValueError):
    """A setting of spacy_llama_ner.LlamaTransformer.v1 is not allowed."""

    def __init__(self, key: str, message: str):
        super().__init__(f"[spacy_llama_ner.LlamaTransformer.v1] {key}: {message}")
        self.key = key


@dataclass(frozen=True)
class LoraSettings:
    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    target_modules: List[str] = field(default_factory=lambda: list(DEFAULT_LORA_TARGETS))

    @classmethod
    def from_config(cls, cfg: Optional[Dict]) -> Optional["LoraSettings"]:
        """Read the `lora` block; None (or an empty block) means LoRA is off."""
        if not cfg:
            return None
        unknown = sorted(set(cfg) - set(LORA_KEYS))
        if unknown:
            raise ConfigError(
                "lora", f"unknown key(s) {unknown}; allowed keys: {list(LORA_KEYS)}"
            )
        targets = cfg.get("target_modules", DEFAULT_LORA_TARGETS)
        if isinstance(targets, str) or not isinstance(targets, (list, tuple)):
            raise ConfigError(
                "lora.target_modules",
                f"must be a list of module names such as {list(DEFAULT_LORA_TARGETS)}, got {targets!r}",
            )
        settings = cls(**{k: (list(v) if k == "target_modules" else v) for k, v in cfg.items()})
        if not isinstance(settings.r, int) or isinstance(settings.r, bool) or settings.r < 1:
            raise ConfigError("lora.r", f"must be a whole number >= 1, got {settings.r!r}")
        if not isinstance(settings.alpha, (int, float)) or settings.alpha <= 0:
            raise ConfigError("lora.alpha", f"must be a number > 0, got {settings.alpha!r}")
        if not isinstance(settings.dropout, (int, float)) or not 0 <= settings.dropout < 1:
            raise ConfigError("lora.dropout", f"must be in [0, 1), got {settings.dropout!r}")
        if not settings.target_modules or not all(
            isinstance(t, str) and t for t in settings.target_modules
        ):
            raise ConfigError(
                "lora.target_modules",
                f"must be a non-empty list of module names such as {list(DEFAULT_LORA_TARGETS)}",
            )
        return settings


@dataclass(frozen=True)
class BackboneSettings:
    """Everything that decides how the decoder is loaded, masked and run."""

    name: str
    attention: str = "bidirectional"
    bidirectional_from_layer: int = 0
    dtype: str = "float32"
    attn_implementation: str = "sdpa"
    lora: Optional[LoraSettings] = None
    max_length: int = 512
    pad_token: Optional[str] = None
    freeze_embeddings: bool = False
    gradient_checkpointing: Union[bool, int] = False
    backbone_learn_rate_scale: float = 1.0
    output_layer: int = 0
    layer_mix: bool = False
    quantize: Optional[str] = None

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name.strip():
            raise ConfigError("name", "give a hub id, a local model directory or a .gguf file")
        if self.attention not in ATTENTION_MODES:
            raise ConfigError(
                "attention", f"got {self.attention!r}; allowed values: {list(ATTENTION_MODES)}"
            )
        layer = self.bidirectional_from_layer
        if not isinstance(layer, int) or isinstance(layer, bool) or layer < 0:
            raise ConfigError(
                "bidirectional_from_layer", f"must be a whole number >= 0, got {layer!r}"
            )
        if layer > 0 and self.attention != "bidirectional":
            raise ConfigError(
                "bidirectional_from_layer",
                f"is {layer}, which only means something with attention = \"bidirectional\"",
            )
        if self.dtype not in DTYPES:
            raise ConfigError("dtype", f"got {self.dtype!r}; allowed values: {list(DTYPES)}")
        if self.attn_implementation not in ATTN_IMPLEMENTATIONS:
            raise ConfigError(
                "attn_implementation",
                f"got {self.attn_implementation!r}; allowed values: {list(ATTN_IMPLEMENTATIONS)}",
            )
        if self.attn_implementation == "flash_attention_2" and self.dtype == "float32":
            raise ConfigError(
                "attn_implementation",
                'flash_attention_2 computes in bfloat16 or float16 only; set dtype = "bfloat16" '
                '(or "float16"), or use attn_implementation = "sdpa"',
            )
        if not isinstance(self.max_length, int) or self.max_length < 8:
            raise ConfigError("max_length", f"must be a whole number >= 8, got {self.max_length!r}")
        if not isinstance(self.freeze_embeddings, bool):
            raise ConfigError("freeze_embeddings", f"must be true or false, got {self.freeze_embeddings!r}")
        checkpointing = self.gradient_checkpointing
        if not isinstance(checkpointing, (bool, int)) or checkpointing < 0:
            raise ConfigError(
                "gradient_checkpointing",
                f"must be true, false or a number of layers (the lowest ones, 0 = none), got {checkpointing!r}",
            )
        if not isinstance(self.output_layer, int) or isinstance(self.output_layer, bool) or self.output_layer < 0:
            raise ConfigError(
                "output_layer",
                f"must be a whole number >= 0 (0: the last layer; N: the output of layer N), got {self.output_layer!r}",
            )
        if not isinstance(self.layer_mix, bool):
            raise ConfigError("layer_mix", f"must be true or false, got {self.layer_mix!r}")
        if self.quantize not in QUANTIZE_MODES:
            raise ConfigError(
                "quantize", f"got {self.quantize!r}; allowed values: null (float32 as trained) or \"int8\" (CPU inference)"
            )
        scale = self.backbone_learn_rate_scale
        if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not 0 < scale <= 100:
            raise ConfigError(
                "backbone_learn_rate_scale",
                f"must be a number in (0, 100], got {scale!r}; 1.0 trains the backbone at "
                "[training.optimizer]'s learning rate, 0.2 at a fifth of it",
            )

    def kept_layers(self, num_layers: int) -> int:
        """How many decoder layers run: all, or those up to `output_layer`."""
        if self.output_layer > num_layers:
            raise ConfigError(
                "output_layer",
                f"is {self.output_layer} but the model has {num_layers} layers; allowed values: 0 (the last) to {num_layers}",
            )
        return self.output_layer or num_layers

    def checkpointed_layers(self, num_layers: int) -> int:
        """How many of the lowest decoder layers recompute in the backward pass."""
        checkpointing = self.gradient_checkpointing
        if isinstance(checkpointing, bool):
            return num_layers if checkpointing else 0
        if checkpointing > num_layers:
            raise ConfigError(
                "gradient_checkpointing",
                f"is {checkpointing} but the model has {num_layers} layers; "
                f"allowed values: true, false or 0 to {num_layers}",
            )
        return checkpointing

    def check_attention_window(self, sliding_window: Optional[int]) -> None:
        """A model that attends within a sliding window (Mistral v0.1: 4,096 pieces)
        would see all of a longer span with sdpa or eager, since we build the masks
        ourselves; so spans stay within the window."""
        if sliding_window and self.max_length > sliding_window:
            raise ConfigError(
                "max_length",
                f"is {self.max_length} but the model attends within a window of {sliding_window} pieces; "
                f"allowed values: 8 to {sliding_window}",
            )

    def causal_layers(self, num_layers: int) -> List[bool]:
        """For each decoder layer, whether it attends only to the left (echo keeps
        every layer causal: the repeated span gives it the right context)."""
        if self.attention in ("causal", "echo"):
            return [True] * num_layers
        if self.bidirectional_from_layer >= num_layers:
            raise ConfigError(
                "bidirectional_from_layer",
                f"is {self.bidirectional_from_layer} but the model has {num_layers} layers; "
                f"allowed values: 0 to {num_layers - 1}",
            )
        return [i < self.bidirectional_from_layer for i in range(num_layers)]

"""LLaMA-family decoders as the transformer under spaCy's NER."""
from .architectures import LlamaTransformer
from .settings import BackboneSettings, ConfigError, LoraSettings

__version__ = "0.1.0"
__all__ = ["LlamaTransformer", "BackboneSettings", "ConfigError", "LoraSettings"]

"""LLaMA-family decoders as the transformer under spaCy's NER.

The public names load on first use: spaCy imports this package for its `llama-ner`
CLI entry point on every `python -m spacy` command, and torch and transformers
would add seconds to each of them (spacy project run, spacy evaluate, ...).
"""
import importlib

__version__ = "0.1.0"

_MODULE_OF = {
    "LlamaTransformer": "architectures",
    "BackboneSettings": "settings",
    "ConfigError": "settings",
    "LoraSettings": "settings",
}
__all__ = list(_MODULE_OF)


def __getattr__(name: str):
    if name not in _MODULE_OF:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_MODULE_OF[name]}", __name__), name)

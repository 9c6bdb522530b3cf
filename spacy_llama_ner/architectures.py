"""Registered architectures (entry point `spacy_architectures`, see setup.cfg)."""
from typing import Callable, Dict, List, Optional, Union

from spacy.tokens import Doc
from spacy.util import registry
from spacy_transformers.data_classes import FullTransformerBatch
from thinc.api import Model

from .backbone.model import LlamaTransformerModel
from .settings import BackboneSettings, LoraSettings


@registry.architectures("spacy_llama_ner.LlamaTransformer.v1")
def LlamaTransformer(
    name: str,
    get_spans: Callable,
    attention: str = "bidirectional",
    bidirectional_from_layer: int = 0,
    dtype: str = "float32",
    attn_implementation: str = "sdpa",
    lora: Optional[Dict] = None,
    max_length: int = 512,
    pad_token: Optional[str] = None,
    freeze_embeddings: bool = False,
    gradient_checkpointing: Union[bool, int] = False,
    backbone_learn_rate_scale: float = 1.0,
    output_layer: int = 0,
    layer_mix: bool = False,
    quantize: Optional[str] = None,
) -> Model[List[Doc], FullTransformerBatch]:
    """A LLaMA-family decoder (hub id, model directory or .gguf file) as the model of
    spacy-transformers' `transformer` component.

    attention: "causal", "bidirectional" or "echo"; with "bidirectional", only
        layers from `bidirectional_from_layer` up attend both ways; "echo" keeps the
        model causal, feeds each span twice and reads the second copy.
    dtype: compute dtype; weights that train stay float32.
    lora: None for full fine-tuning, or {r, alpha, dropout, target_modules}.
    max_length: most word pieces per span (with echo: both copies); longer spans are cut.
    freeze_embeddings: keep the input embedding as loaded (no gradient, no optimizer
        state): NER data touches few of its rows, and it is a fifth of a small model.
    gradient_checkpointing: in training, keep only each decoder layer's input and
        recompute the layer in the backward pass: less memory for more compute (each
        layer's forward runs twice); the gradients are the same. A number N does it
        for the lowest N layers only: each one saves its share of the activations
        and costs its share of the recompute.
    backbone_learn_rate_scale: the decoder trains at [training.optimizer]'s
        learning rate times this, the NER head at that rate itself: a pretrained
        backbone usually wants a smaller step than a freshly initialised head.
    output_layer: 0 reads the last layer; N reads the output of layer N (through the
        model's final norm) and drops the layers above it when the model loads, so
        they cost neither memory nor time: a decoder's top layers are shaped for
        next-token prediction.
    layer_mix: read a learned weighted sum of every decoder layer's output (each
        through the final norm; with output_layer N, of layers 1 to N), starting
        from their mean, instead of one layer (ELMo's scalar mix). The weights
        train with the backbone and are saved with the pipeline.
    quantize: null, or "int8" for faster CPU inference: the decoder's linear layers
        (but down_proj) as dynamic int8 after SmoothQuant smoothing, done when the
        model loads (e.g. spacy.load(path, config=...)); the saved weights stay
        float32, and a quantized model neither trains nor saves.
    """
    settings = BackboneSettings(
        name=name,
        attention=attention,
        bidirectional_from_layer=bidirectional_from_layer,
        dtype=dtype,
        attn_implementation=attn_implementation,
        lora=LoraSettings.from_config(lora),
        max_length=max_length,
        pad_token=pad_token,
        freeze_embeddings=freeze_embeddings,
        gradient_checkpointing=gradient_checkpointing,
        backbone_learn_rate_scale=backbone_learn_rate_scale,
        output_layer=output_layer,
        layer_mix=layer_mix,
        quantize=quantize,
    )
    return LlamaTransformerModel(settings, get_spans)

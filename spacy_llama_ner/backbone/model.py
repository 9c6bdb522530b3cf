"""The thinc model behind `spacy_llama_ner.LlamaTransformer.v1`.

Docs -> spans -> word pieces -> LlamaEncoder -> FullTransformerBatch, the data
spacy-transformers' `transformer` component and its listeners expect.
"""
import functools
import os
import warnings
from typing import Callable, List, Optional, Tuple

import torch
from spacy.tokens import Doc
from spacy_transformers.data_classes import FullTransformerBatch
from thinc.api import Model, PyTorchShim, get_torch_default_device, xp2torch
from thinc.types import ArgsKwargs
from wasabi import msg
from transformers.modeling_outputs import BaseModelOutput

from . import serialization
from .alignment import align_spans, count_truncated, tokenize_spans
from .encoder import LlamaEncoder
from .loading import TORCH_DTYPES, check_dtype_runs, check_llama_family, load_backbone
from .lora import add_lora, merge_lora
from .quantize import check_runs_here, quantize_int8
from .optimizer import TorchAdamStep, runs_as_torch_adamw
from ..settings import BackboneSettings, ConfigError


def LlamaTransformerModel(
    settings: BackboneSettings, get_spans: Callable[[List[Doc]], List[List]]
) -> Model[List[Doc], FullTransformerBatch]:
    return Model(
        "llama_transformer",
        forward,
        init=init,
        dims={"nO": None},
        attrs={"settings": settings, "get_spans": get_spans},
        shims=[LlamaShim(settings)],
    )


def init(model: Model, X: Optional[List[Doc]] = None, Y=None) -> None:
    shim: LlamaShim = model.shims[0]
    if not shim.is_loaded:  # a pipeline loaded from disk already has its weights
        shim.load_pretrained()
    model.set_dim("nO", shim.hidden_size)


def forward(model: Model, docs: List[Doc], is_train: bool) -> Tuple[FullTransformerBatch, Callable]:
    shim: LlamaShim = model.shims[0]
    if is_train and shim.settings.quantize:
        raise ConfigError(
            "quantize",
            f'is "{shim.settings.quantize}", which is for inference only: train with quantize = null '
            "(the saved pipeline keeps float32 weights) and set it when you load the trained pipeline",
        )
    if not shim.is_loaded:
        raise ValueError(
            "The transformer has no weights yet: call nlp.initialize() before "
            "using a pipeline built from a config."
        )
    # a span without tokens (doc_spans.v1 on an empty Doc) has no features, and
    # spacy-transformers' split_by_doc skips it without counting its row
    nested_spans = [[span for span in doc_spans if len(span)] for doc_spans in model.attrs["get_spans"](docs)]
    flat_spans = [span for doc_spans in nested_spans for span in doc_spans]
    if not flat_spans:
        return FullTransformerBatch.empty(len(docs)), lambda d_output: docs
    echo = shim.settings.attention == "echo"
    wordpieces, offsets = tokenize_spans(
        shim.tokenizer, flat_spans, shim.settings.max_length, shim.pad_id, echo=echo
    )
    align = align_spans(flat_spans, offsets, wordpieces.input_ids.shape[1])
    truncated = count_truncated_per_doc(flat_spans, offsets)
    for doc in docs:  # per Doc (doc.user_data), which annotate sums per run
        if doc in truncated:
            doc.user_data[TRUNCATED_KEY] = truncated[doc]
        else:
            doc.user_data.pop(TRUNCATED_KEY, None)
    if truncated:
        # and per model, for a training run; the warning says the running count at
        # 1, 10, 100, ... cut spans, instead of once per process
        before = model.attrs.get(TRUNCATED_TOTAL, 0)
        model.attrs[TRUNCATED_TOTAL] = after = before + sum(truncated.values())
        if is_train:  # the rest are predictions: dev evaluations, annotate
            model.attrs[TRUNCATED_IN_TRAINING] = model.attrs.get(TRUNCATED_IN_TRAINING, 0) + sum(truncated.values())
        if len(str(after)) > len(str(before)) or before == 0:
            warnings.warn(
                f"{after} span(s) so far have had more than max_length={shim.settings.max_length} word pieces "
                + ("(counting both copies of attention = \"echo\") " if echo else "")
                + "and were cut; their last tokens share the features of the last piece kept. "
                "Use a smaller window in get_spans or a larger max_length."
            )
    device = shim.device
    inputs = ArgsKwargs(
        args=(),
        kwargs={
            "input_ids": xp2torch(wordpieces.input_ids, device=device),
            "attention_mask": xp2torch(wordpieces.attention_mask, device=device).bool(),
        },
    )
    hidden, backprop_torch = shim(inputs, is_train)
    output = FullTransformerBatch(
        spans=nested_spans,
        wordpieces=wordpieces,
        model_output=BaseModelOutput(last_hidden_state=hidden),
        align=align,
    )

    def backprop(d_output: FullTransformerBatch) -> List[Doc]:
        d_hidden = d_output.model_output.to_tuple()[0]
        d_hidden = shim.loss_scaler.scale(d_hidden)  # unscaled once per optimizer step
        backprop_torch(ArgsKwargs(args=(hidden,), kwargs={"grad_tensors": (d_hidden,)}))
        return docs

    return output, backprop


class LlamaShim(PyTorchShim):
    """Holds the tokenizer and the LlamaEncoder, and owns their serialization."""

    def __init__(self, settings: BackboneSettings):
        super().__init__(None)
        self.settings = settings
        self.tokenizer = None
        self.pad_id: Optional[int] = None
        self._adam_step = TorchAdamStep()
        self.loss_scaler = torch.amp.GradScaler(enabled=False)

    @property
    def is_loaded(self) -> bool:
        return self._model is not None

    @property
    def hidden_size(self) -> int:
        return self._model.backbone.config.hidden_size

    def load_pretrained(self) -> None:
        check_dtype_runs(self.settings.dtype, get_torch_default_device())
        tokenizer, backbone = load_backbone(self.settings)
        keep_lowest_layers(backbone, self.settings.kept_layers(backbone.config.num_hidden_layers))
        if self.settings.lora:
            backbone = add_lora(backbone, self.settings.lora)
        self._attach(tokenizer, backbone)

    def _attach(self, tokenizer, backbone: torch.nn.Module) -> None:
        settings = self.settings
        config = backbone.config
        # Qwen2 configs name a window but use it only with use_sliding_window
        window = getattr(config, "sliding_window", None) if getattr(config, "use_sliding_window", True) else None
        settings.check_attention_window(window)
        if settings.freeze_embeddings:
            backbone.get_input_embeddings().weight.requires_grad_(False)
        encoder = LlamaEncoder(
            backbone,
            settings.causal_layers(config.num_hidden_layers),
            compute_dtype=TORCH_DTYPES[settings.dtype],
            checkpoint_layers=settings.checkpointed_layers(config.num_hidden_layers),
            layer_mix=settings.layer_mix,
        )
        tokenizer.model_max_length = settings.max_length
        self.tokenizer = tokenizer
        self.pad_id = choose_pad_id(tokenizer, settings.pad_token)
        device = get_torch_default_device()
        self._model = encoder.to(device)
        if settings.quantize:
            self._quantize(device)
        one_thread_in_forked_children()
        self.loss_scaler = torch.amp.GradScaler(device.type, enabled=needs_loss_scaling(settings.dtype))

    def _quantize(self, device: torch.device) -> None:
        """quantize = "int8": see spacy_llama_ner/backbone/quantize.py."""
        check_runs_here(device.type)
        if self.settings.dtype != "float32":
            raise ConfigError("quantize", f'"int8" quantizes a float32 model; set dtype = "float32" (got "{self.settings.dtype}")')
        if self.settings.lora:
            merge_lora(self._model.backbone)
        report = quantize_int8(self._model, self.tokenizer, self.pad_id)
        msg.info(
            f"Quantized the decoder to int8 for inference: {report['quantized']} linear layers int8, "
            f"{report['float32']} (down_proj) float32, in {report['seconds']:.1f} s"
        )

    def finish_update(self, optimizer) -> None:
        """thinc's Adam as one torch AdamW step (spacy_llama_ner.backbone.optimizer); any
        other optimizer through thinc's per-parameter path."""
        if runs_as_torch_adamw(optimizer):
            self._adam_step.step([p for p in self._model.parameters() if p.requires_grad], optimizer,
                                 self.loss_scaler, self.settings.backbone_learn_rate_scale)
        elif self.settings.backbone_learn_rate_scale != 1.0:
            raise ConfigError(
                "backbone_learn_rate_scale",
                f"is {self.settings.backbone_learn_rate_scale}, which needs thinc's Adam as spaCy configures it by default "
                "([training.optimizer] @optimizers = \"Adam.v1\" with use_averages = false, and L2_is_weight_decay = true "
                "if L2 is set); use that optimizer or backbone_learn_rate_scale = 1.0",
            )
        elif self.loss_scaler.is_enabled():
            raise ConfigError(
                "dtype",
                'float16 trains with loss scaling, which needs thinc\'s Adam as spaCy configures it by default '
                "([training.optimizer] @optimizers = \"Adam.v1\" with use_averages = false, and L2_is_weight_decay = true "
                'if L2 is set); use that optimizer, or dtype = "bfloat16" or "float32"',
            )
        else:
            super().finish_update(optimizer)

    def to_bytes(self):
        """A msgpack-ready dict (not one bytes blob): thinc packs it as it is, so
        no single msgpack bin holds more than one weights shard."""
        if self.settings.quantize and self.is_loaded:
            raise ConfigError(
                "quantize",
                f'is "{self.settings.quantize}": a quantized model is for inference and is not saved (its float32 '
                "weights are gone); save the pipeline as loaded with quantize = null",
            )
        if not self.is_loaded:
            return {"format": serialization.FORMAT_VERSION, "loaded": False}
        backbone = self._model.backbone
        msg = {
            "format": serialization.FORMAT_VERSION,
            "loaded": True,
            "config": backbone.config.to_dict(),
            "lora": serialization.lora_to_saved(self.settings.lora),
            "tokenizer": serialization.tokenizer_to_files(self.tokenizer),
            "weights": serialization.state_to_shards(backbone.state_dict()),
        }
        if self._model.layer_mix_logits is not None:
            msg["layer_mix"] = self._model.layer_mix_logits.detach().cpu().tolist()
        return msg

    def from_bytes(self, msg):
        if not isinstance(msg, dict) or msg.get("format") != serialization.FORMAT_VERSION:
            raise ValueError(
                "This transformer component was not saved by spacy_llama_ner "
                f"(format {serialization.FORMAT_VERSION}); retrain or re-save it."
            )
        if not msg["loaded"]:
            return self
        check_dtype_runs(self.settings.dtype, get_torch_default_device())
        if "lora" in msg:  # absent in pipelines saved before the settings were stored
            serialization.check_lora_unchanged(msg["lora"], self.settings.lora)
        config = serialization.config_from_dict(msg["config"])
        check_llama_family(config, "the saved pipeline")
        backbone = serialization.empty_backbone(config, self.settings.attn_implementation)
        if self.settings.lora:
            backbone = add_lora(backbone, self.settings.lora)
        serialization.load_state_strict(backbone, serialization.shards_to_state(msg["weights"]))
        # output_layer set at load time on a pipeline saved deeper: read that layer, drop the rest
        keep_lowest_layers(backbone, self.settings.kept_layers(backbone.config.num_hidden_layers))
        tokenizer = serialization.tokenizer_from_files(msg["tokenizer"])
        self._attach(tokenizer, backbone)
        serialization.load_layer_mix(self._model, msg.get("layer_mix"))
        return self


def keep_lowest_layers(backbone: torch.nn.Module, n: int) -> None:
    """Drop the decoder layers above the lowest `n`; the config says so, so the
    saved pipeline rebuilds exactly these."""
    config = backbone.config
    if n == config.num_hidden_layers:
        return
    backbone.layers = torch.nn.ModuleList(backbone.layers[:n])
    config.num_hidden_layers = n
    if getattr(config, "layer_types", None):
        config.layer_types = config.layer_types[:n]


TRUNCATED_KEY = "spacy_llama_ner.truncated_spans"  # doc.user_data: the Doc's spans cut at max_length
TRUNCATED_TOTAL = "truncated_spans"  # model.attrs: spans cut at max_length since the model was made
TRUNCATED_IN_TRAINING = "truncated_spans_in_training"  # model.attrs: those cut in training updates


def count_truncated_per_doc(spans, offsets) -> dict:
    """{doc: spans of it cut at max_length}, only for docs with such spans."""
    counts: dict = {}
    for span, span_offsets in zip(spans, offsets):
        if count_truncated([span], [span_offsets]):
            counts[span.doc] = counts.get(span.doc, 0) + 1
    return counts


@functools.lru_cache(maxsize=None)
def one_thread_in_forked_children() -> None:
    """spaCy's nlp.pipe(n_process=N) forks worker processes, and torch's OpenMP
    thread pool does not survive a fork: a child's first parallel op hangs. Each
    child runs one thread (the children are the parallelism). Registered once, when
    the first backbone is attached, not when the package is imported."""
    os.register_at_fork(after_in_child=lambda: torch.set_num_threads(1))


def needs_loss_scaling(dtype: str) -> bool:
    """float16 gradients underflow to zero without loss scaling; bfloat16 has
    float32's range and needs none."""
    return dtype == "float16"


def choose_pad_id(tokenizer, pad_token: Optional[str]) -> int:
    """Padding positions are masked out, so any real id works; a configured
    `pad_token` must exist in the vocabulary."""
    if pad_token is not None:
        pad_id = tokenizer.convert_tokens_to_ids(pad_token)
        if pad_id is None or pad_id == tokenizer.unk_token_id and pad_token != tokenizer.unk_token:
            raise ConfigError("pad_token", f"{pad_token!r} is not in the tokenizer's vocabulary")
        return pad_id
    for candidate in (tokenizer.pad_token_id, tokenizer.eos_token_id, tokenizer.unk_token_id):
        if candidate is not None:
            return candidate
    return 0

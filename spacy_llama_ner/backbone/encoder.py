"""Run a LLaMA-family decoder stack as an encoder, causal or bidirectional per layer.

transformers 4.53 builds its own causal mask inside `LlamaModel.forward`, so turning
the `is_causal` flag off is not enough there. We drive the layers ourselves and hand
each one the mask it should use:

* sdpa: causal layers get no mask, so the module's `is_causal` flag picks SDPA's
  causal kernel (right padding cannot leak into real positions from the right);
  bidirectional layers get no mask when nothing is padded, else a ready 4-D
  boolean mask, which is used as given;
* eager: a ready 4-D additive mask whenever one is needed (eager never masks
  by itself);
* flash_attention_2: the 2-D padding mask plus the module flag.
"""
from contextlib import nullcontext
from functools import partial
from typing import Dict, List

import torch
from torch.utils.checkpoint import checkpoint


class LlamaEncoder(torch.nn.Module):
    def __init__(
        self,
        backbone: torch.nn.Module,
        causal_layers: List[bool],
        compute_dtype: torch.dtype = torch.float32,
        checkpoint_layers: int = 0,
        layer_mix: bool = False,
    ):
        super().__init__()
        self.backbone = backbone
        self.compute_dtype = compute_dtype
        self.checkpoint_layers = checkpoint_layers
        self.backbone.config.use_cache = False
        layers = backbone.layers
        if len(causal_layers) != len(layers):
            raise ValueError(f"{len(causal_layers)} attention flags for {len(layers)} layers")
        self.causal_layers = list(causal_layers)
        for layer, causal in zip(layers, self.causal_layers):
            layer.self_attn.is_causal = causal
        # one logit per layer, all equal at the start: the mix begins as the mean
        self.layer_mix_logits = torch.nn.Parameter(torch.zeros(len(layers))) if layer_mix else None

    def layer_mix_weights(self) -> torch.Tensor:
        """Each layer's share of the features (they sum to 1). The logits are the
        parameter times LAYER_MIX_LOGIT_SCALE: Adam moves a parameter by about the
        learning rate per step whatever its gradient, so at 2e-4 a plain logit could
        move less than 0.4 in 2,000 steps and the mix would stay near the mean."""
        return torch.softmax(self.layer_mix_logits.float() * LAYER_MIX_LOGIT_SCALE, dim=0)

    @property
    def attn_implementation(self) -> str:
        return self.backbone.config._attn_implementation

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """input_ids, attention_mask: (batch, length), right-padded; returns float32
        hidden states (batch, length, hidden), zeros at padding.

        Rows are run in groups of similar length (see `length_groups`), so a batch
        of short and long spans does not pay for padding every row to the longest."""
        lengths = attention_mask.sum(dim=1).tolist()
        outputs, order = [], []
        for rows in length_groups(lengths, *GROUP_PIECES[input_ids.device.type == "cuda"]):
            width = max(lengths[i] for i in rows)
            index = torch.tensor(rows, device=input_ids.device)
            hidden = self._encode(input_ids[index, :width], attention_mask[index, :width])
            outputs.append(torch.nn.functional.pad(hidden, (0, 0, 0, input_ids.shape[1] - width)))
            order.extend(rows)
        hidden = torch.cat(outputs) if len(outputs) > 1 else outputs[0]
        inverse = torch.empty(len(order), dtype=torch.long, device=input_ids.device)
        inverse[torch.tensor(order, device=input_ids.device)] = torch.arange(len(order), device=input_ids.device)
        return hidden[inverse] * attention_mask[..., None]

    def _encode(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        backbone = self.backbone
        autocast = (
            torch.autocast(input_ids.device.type, dtype=self.compute_dtype)
            if self.compute_dtype != torch.float32
            else nullcontext()
        )
        # The lowest `checkpoint_layers` layers keep only their input in training; the
        # backward pass runs them again.
        checkpointed = self.checkpoint_layers if torch.is_grad_enabled() else 0
        recomputed = partial(checkpoint, _run_layer, use_reentrant=False)
        with autocast:
            hidden = backbone.embed_tokens(input_ids)
            position_ids = torch.arange(input_ids.shape[1], device=input_ids.device)[None, :]
            position_embeddings = backbone.rotary_emb(hidden, position_ids)
            masks = self._masks(attention_mask, hidden.dtype)
            layer_outputs = []
            for i, (layer, causal) in enumerate(zip(backbone.layers, self.causal_layers)):
                run_layer = recomputed if i < checkpointed else _run_layer
                hidden = run_layer(layer, hidden, masks[causal], position_ids, position_embeddings)
                if self.layer_mix_logits is not None:
                    layer_outputs.append(hidden)
            if self.layer_mix_logits is None:
                return backbone.norm(hidden).float()
            # each layer's output through the final norm, as output_layer reads one
            weights = self.layer_mix_weights()
            return sum(w * backbone.norm(h).float() for w, h in zip(weights, layer_outputs))

    def _masks(self, attention_mask: torch.Tensor, dtype: torch.dtype) -> Dict[bool, torch.Tensor]:
        """The mask each kind of layer receives, keyed by `causal`."""
        implementation = self.attn_implementation
        if implementation == "flash_attention_2":
            return {True: attention_mask, False: attention_mask}
        padded = not bool(attention_mask.all())
        masks = {}
        for causal in set(self.causal_layers):
            if implementation == "sdpa":
                masks[causal] = allowed_mask(attention_mask, causal) if padded and not causal else None
            else:
                masks[causal] = additive_mask(attention_mask, causal, dtype) if padded or causal else None
        return masks


LAYER_MIX_LOGIT_SCALE = 50.0

# A group is closed when padding would exceed this share of its real pieces,
# unless the group is still smaller than its minimum size (small matrices run
# slowly), and always before it exceeds its maximum (bounds memory for long
# documents). A GPU wants far larger groups than a CPU: keyed by "on a GPU".
PADDING_TOLERANCE = 0.2
GROUP_PIECES = {False: (512, 8192), True: (16384, 65536)}


def length_groups(lengths: List[int], min_pieces: int = 512, max_pieces: int = 8192) -> List[List[int]]:
    """Row indices, sorted by length and cut into groups with little padding."""
    groups: List[List[int]] = []
    current: List[int] = []
    real = 0
    for i in sorted(range(len(lengths)), key=lengths.__getitem__):
        padded = (len(current) + 1) * lengths[i]
        too_padded = padded > min_pieces and padded > (1 + PADDING_TOLERANCE) * (real + lengths[i])
        if current and (too_padded or padded > max_pieces):
            groups.append(current)
            current, real = [], 0
        current.append(i)
        real += lengths[i]
    groups.append(current)
    return groups


def _run_layer(layer, hidden, mask, position_ids, position_embeddings):
    out = layer(
        hidden,
        attention_mask=mask,
        position_ids=position_ids,
        position_embeddings=position_embeddings,
        use_cache=False,
    )
    return out[0] if isinstance(out, tuple) else out


def allowed_mask(attention_mask: torch.Tensor, causal: bool) -> torch.Tensor:
    """(batch, 1, query, key) boolean mask, True where a query may attend. Keys that
    are padding are never attended. Every query may attend to itself, so padded
    query rows (whose outputs are discarded) never become all-masked NaNs."""
    length = attention_mask.shape[1]
    allowed = attention_mask.bool()[:, None, None, :].expand(-1, 1, length, length)
    eye = torch.eye(length, dtype=torch.bool, device=attention_mask.device)
    if causal:
        allowed = allowed & torch.tril(torch.ones_like(eye))
    return allowed | eye


def additive_mask(attention_mask: torch.Tensor, causal: bool, dtype: torch.dtype) -> torch.Tensor:
    """The same mask as `allowed_mask`, as 0 / the dtype's minimum, for eager."""
    allowed = allowed_mask(attention_mask, causal)
    mask = torch.zeros(allowed.shape, dtype=dtype, device=attention_mask.device)
    return mask.masked_fill_(~allowed, torch.finfo(dtype).min)

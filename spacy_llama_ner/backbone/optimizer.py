"""The backbone's optimizer step as one torch AdamW step over all its parameters.

thinc's PyTorchShim hands every parameter to thinc's optimizer one at a time: a
clipping norm, an Adam update and a weight decay each, with array conversions in
between. For thinc's Adam (spaCy's default optimizer) the same update runs here as
one fused torch step (on the CPU too: 0.11 s for SmolLM2's 135 M parameters on our
2 cores, against ~0.4 s with `foreach` and ~0.7 s for thinc's), taking from
thinc's optimizer, at every step, what spaCy's config sets: the scheduled learning
rate, the betas, eps, the decoupled weight decay (`L2` with `L2_is_weight_decay`) and
the gradient clipping (thinc clips each parameter's gradient to norm `grad_clip`).
With float16 the loss is scaled (torch's GradScaler): the step unscales the
gradients once, after every micro-batch of `accumulate_gradient` has added its
own, and skips a step whose gradients overflowed, as torch's recipe does. Any
other optimizer setting (RAdam, averages, L2 as a gradient term, plain SGD) keeps
thinc's own per-parameter path.
"""
import math
from typing import List, Optional

import torch
from thinc.api import Optimizer


def runs_as_torch_adamw(optimizer: Optimizer) -> bool:
    """Whether thinc's `optimizer` is the Adam this step reproduces."""
    return (
        optimizer.b1 > 0.0
        and optimizer.b2 > 0.0
        and not optimizer.use_radam
        and optimizer.averages is None
        and (optimizer.L2 == 0.0 or optimizer.L2_is_weight_decay)
    )


class TorchAdamStep:
    """torch AdamW for a module's trainable parameters, driven by a thinc Optimizer.

    The step writes into the parameters' storage through `.data` views, as thinc's
    path does: spaCy runs the transformer's finish_update after its forward pass and
    before the listeners' backward pass, which must not see the parameters' version
    counters move. The moments live here, one set per thinc optimizer (a new training
    run brings a new optimizer and starts from zero moments, as thinc's would)."""

    def __init__(self) -> None:
        self._for: Optional[Optimizer] = None  # the object, not its id: ids are reused
        self._torch: Optional[torch.optim.AdamW] = None
        self._parameters: List[torch.nn.Parameter] = []
        self._views: List[torch.Tensor] = []
        self._steps = 0

    def _current(self, parameters: List[torch.nn.Parameter], optimizer: Optimizer) -> bool:
        return (
            self._for is optimizer
            and len(parameters) == len(self._parameters)
            and all(p is q and p.data_ptr() == v.data_ptr() for p, q, v in zip(parameters, self._parameters, self._views))
        )

    def step(self, parameters: List[torch.nn.Parameter], optimizer: Optimizer,
             loss_scaler: Optional[torch.amp.GradScaler] = None, learn_rate_scale: float = 1.0) -> None:
        """One update of `parameters` (all the trainable ones; those without a
        gradient this step are left alone, as thinc leaves them). `loss_scaler`:
        the scaler that scaled the backward passes' gradients, if one did.
        `learn_rate_scale`: the step uses thinc's scheduled learning rate times this."""
        if not self._current(parameters, optimizer):
            self._for, self._parameters = optimizer, list(parameters)
            self._views = [p.data for p in parameters]
            self._steps = 0
            self._torch = torch.optim.AdamW(self._views, lr=0.0, fused=True)
        grads = []
        for parameter, view in zip(self._parameters, self._views):
            view.grad = parameter.grad
            if parameter.grad is not None:
                grads.append(parameter.grad)
        if not grads:
            return
        scaled = loss_scaler is not None and loss_scaler.is_enabled()
        if scaled:
            loss_scaler.unscale_(self._torch)
        norms = torch._foreach_norm(grads) if optimizer.grad_clip or scaled else []
        if scaled:
            overflowed = not bool(torch.isfinite(torch.stack(norms)).all())
            loss_scaler.update()  # a smaller scale after an overflow, a larger one after many good steps
            if overflowed:  # skipped, as thinc skips it: no update, no step counted
                torch._foreach_zero_(grads)
                return
        if optimizer.grad_clip:
            scales = [torch.clamp(optimizer.grad_clip / (norm + 1e-12), max=1.0) for norm in norms]
            torch._foreach_mul_(grads, scales)
        # this step's values (any of them may be a schedule). thinc adds eps to the
        # square root of the raw second moment, torch to that of the bias-corrected
        # one: the same update with torch's eps scaled by 1 / sqrt(1 - b2 ** step)
        self._steps += 1
        group = self._torch.param_groups[0]
        group.update(lr=float(optimizer.learn_rate) * learn_rate_scale, betas=(optimizer.b1, optimizer.b2),
                     eps=optimizer.eps / math.sqrt(1.0 - optimizer.b2**self._steps), weight_decay=optimizer.L2)
        self._torch.step()
        torch._foreach_zero_(grads)

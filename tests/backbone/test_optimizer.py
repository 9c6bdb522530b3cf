"""The backbone's optimizer step as one torch AdamW step: the same update as thinc's
per-parameter Adam (clipping, schedule, decoupled weight decay), used by the shim
for thinc's Adam only, and training a pipeline with it."""
import copy

import pytest
import torch
from spacy.training import Example
from thinc.api import Adam, PyTorchShim, RAdam, SGD

from conftest import TRAIN, make_nlp
from spacy_llama_ner.backbone.optimizer import TorchAdamStep, runs_as_torch_adamw
from spacy_llama_ner.settings import ConfigError


def thinc_adam(**settings):
    # a learning rate that changes every step, as spaCy's warmup_linear schedule does
    return Adam(learn_rate=iter([1e-3, 2e-3, 1.5e-3, 1e-3]), L2=0.01, L2_is_weight_decay=True, grad_clip=1.0,
                use_averages=False, **settings)


def test_one_torch_step_updates_as_thincs_adam_does():
    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 4))
    frozen = torch.nn.Linear(3, 3)  # no gradient: stays as it is on both paths
    module.add_module("frozen", frozen)
    theirs, ours = copy.deepcopy(module), copy.deepcopy(module)
    theirs_opt, ours_opt = thinc_adam(), thinc_adam()
    shim, step = PyTorchShim(theirs), TorchAdamStep()
    for i in range(4):
        grads = {name: torch.randn_like(p) * (5.0 if i % 2 else 0.05)  # above and below the clipping norm
                 for name, p in module.named_parameters() if not name.startswith("frozen")}
        for copy_ in (theirs, ours):
            for name, p in copy_.named_parameters():
                p.grad = grads[name].clone() if name in grads else None
        shim.finish_update(theirs_opt)
        step.step([p for p in ours.parameters() if p.requires_grad], ours_opt)
        theirs_opt.step_schedules()
        ours_opt.step_schedules()
        for (name, a), b in zip(theirs.named_parameters(), ours.parameters()):
            torch.testing.assert_close(b.detach(), a.detach(), rtol=1e-4, atol=1e-6, msg=f"{name} after step {i + 1}")
            if name in grads:
                assert not torch.equal(a.detach(), module.get_parameter(name).detach())  # it did train
                assert b.grad is not None and not b.grad.any()  # zeroed for the next step
    for a, b in zip(frozen.parameters(), ours.frozen.parameters()):
        assert torch.equal(a, b)


def test_a_new_optimizer_starts_from_zero_moments():
    torch.manual_seed(0)
    first = torch.nn.Linear(4, 4)
    second = copy.deepcopy(first)
    step = TorchAdamStep()
    for module, optimizer in ((first, thinc_adam()), (second, thinc_adam())):
        module.weight.grad, module.bias.grad = torch.ones_like(module.weight), torch.ones_like(module.bias)
        step.step(list(module.parameters()), optimizer)  # the second run: a new optimizer, same first update
    torch.testing.assert_close(second.weight, first.weight)


@pytest.mark.parametrize("optimizer,expected", [
    (Adam(0.001, use_averages=False), True),
    (Adam(0.001, L2=0.01, L2_is_weight_decay=True, use_averages=False), True),
    (Adam(0.001), False),  # thinc's default keeps averages
    (RAdam(0.001, use_averages=False), False),
    (Adam(0.001, L2=0.01, L2_is_weight_decay=False, use_averages=False), False),
    (SGD(0.001), False),
])
def test_only_thincs_adam_takes_the_torch_step(optimizer, expected):
    assert runs_as_torch_adamw(optimizer) is expected


def test_a_pipeline_trains_the_same_with_the_torch_step_as_with_thincs_own(tiny_llama):
    """spaCy runs the transformer's finish_update between its forward pass and the
    listener's backward pass. Two pipelines from one seed, one taking the torch step
    (averages off, as in our configs) and one thinc's path (averages on, which does
    not change the update), have the same backbone weights after three updates (two
    optimizer steps: the first update has no gradient yet); later their float
    rounding differences grow, as Adam's normalised steps amplify them, and both learn."""
    from spacy.util import fix_random_seed

    weights, losses = [], []
    for use_averages in (False, True):
        fix_random_seed(0)
        nlp = make_nlp(tiny_llama)
        examples = [Example.from_dict(nlp.make_doc(t), {"entities": e}) for t, e in TRAIN]
        nlp.initialize(lambda: examples)
        optimizer = Adam(0.001, L2=0.01, L2_is_weight_decay=True, grad_clip=1.0, use_averages=use_averages)
        assert runs_as_torch_adamw(optimizer) is not use_averages
        backbone = nlp.get_pipe("transformer").model.shims[0]._model.backbone
        before = copy.deepcopy(backbone.state_dict())
        losses.append([nlp.update(examples, sgd=optimizer, drop=0.0)["ner"] for _ in range(3)])
        weights.append(copy.deepcopy(backbone.state_dict()))
        assert all(not torch.equal(v, before[k]) for k, v in weights[-1].items())  # every weight trained
        losses[-1] += [nlp.update(examples, sgd=optimizer, drop=0.0)["ner"] for _ in range(22)]
    ours, theirs = weights
    for key in theirs:
        torch.testing.assert_close(ours[key], theirs[key], rtol=0, atol=1e-6, msg=key)  # steps of 1e-3 each
    for run in losses:
        assert run[-1] < run[0] / 2


def accumulated_update(nlp, examples, optimizer, micro_batches: int) -> dict:
    """One optimizer step over `micro_batches` parts of `examples`, as spaCy's
    training loop runs `accumulate_gradient`; returns the step's losses."""
    losses = {}
    for i in range(micro_batches):
        nlp.update(examples[i::micro_batches], sgd=False, drop=0.0, losses=losses)
    for _, pipe in nlp.pipeline:
        pipe.finish_update(optimizer)
    return losses


def test_loss_scaling_unscales_accumulated_gradients_once(tiny_llama):
    """float16's loss scaling: each micro-batch's backward pass adds scaled gradients,
    the optimizer step unscales their sum once. With float32 compute the scale (a
    power of two) cancels exactly, so training with the scaler on matches training
    with it off, two micro-batches per step; unscaling after each backward pass
    would shrink the first micro-batch's gradients by the scale a second time."""
    from spacy.util import fix_random_seed

    weights = []
    for scale in (None, 2.0**16):
        fix_random_seed(0)
        nlp = make_nlp(tiny_llama)
        examples = [Example.from_dict(nlp.make_doc(t), {"entities": e}) for t, e in TRAIN]
        nlp.initialize(lambda: examples)
        shim = nlp.get_pipe("transformer").model.shims[0]
        if scale:
            shim.loss_scaler = torch.amp.GradScaler("cpu", init_scale=scale)
        optimizer = Adam(0.001, grad_clip=1.0, use_averages=False)
        for _ in range(3):
            accumulated_update(nlp, examples, optimizer, micro_batches=2)
        assert shim.loss_scaler.get_scale() == (scale or 1.0)  # no overflow: the scale stayed
        weights.append(copy.deepcopy(shim._model.backbone.state_dict()))
    plain, scaled = weights
    for key in plain:
        torch.testing.assert_close(scaled[key], plain[key], rtol=0, atol=1e-6, msg=key)


def test_an_overflowed_step_is_skipped_and_the_scale_lowered(tiny_llama):
    nlp = make_nlp(tiny_llama)
    examples = [Example.from_dict(nlp.make_doc(t), {"entities": e}) for t, e in TRAIN]
    nlp.initialize(lambda: examples)
    shim = nlp.get_pipe("transformer").model.shims[0]
    shim.loss_scaler = torch.amp.GradScaler("cpu", init_scale=2.0**127)  # float32 gradients overflow
    backbone = shim._model.backbone
    before = copy.deepcopy(backbone.state_dict())
    accumulated_update(nlp, examples, Adam(0.001, use_averages=False), micro_batches=1)
    for key, value in backbone.state_dict().items():
        assert torch.equal(value, before[key]), key
    assert all(p.grad is None or not p.grad.any() for p in backbone.parameters())
    assert shim.loss_scaler.get_scale() == 2.0**126


def test_float16_with_an_optimizer_loss_scaling_cannot_drive_is_named(tiny_llama):
    nlp = make_nlp(tiny_llama, dtype="float16")
    examples = [Example.from_dict(nlp.make_doc(t), {"entities": e}) for t, e in TRAIN]
    nlp.initialize(lambda: examples)
    with pytest.raises(ConfigError, match=r'dtype: float16 trains with loss scaling.*use_averages = false'):
        accumulated_update(nlp, examples, RAdam(0.001, use_averages=False), micro_batches=1)


def test_float16_learns_with_accumulated_micro_batches(tiny_llama):
    from spacy.util import fix_random_seed

    fix_random_seed(0)
    nlp = make_nlp(tiny_llama, dtype="float16")
    examples = [Example.from_dict(nlp.make_doc(t), {"entities": e}) for t, e in TRAIN]
    nlp.initialize(lambda: examples)
    shim = nlp.get_pipe("transformer").model.shims[0]
    backbone = shim._model.backbone
    before = copy.deepcopy(backbone.state_dict())
    optimizer = Adam(0.001, grad_clip=1.0, use_averages=False)
    losses = [accumulated_update(nlp, examples, optimizer, micro_batches=2)["ner"] for _ in range(25)]
    assert shim.loss_scaler.is_enabled()
    assert 1.0 <= shim.loss_scaler.get_scale() < 2.0**16  # the first steps overflowed and lowered it
    assert all(not torch.equal(v, before[k]) for k, v in backbone.state_dict().items())  # every weight trained
    assert losses[-1] < losses[0] / 2


def test_backbone_learn_rate_scale_scales_the_backbone_step_only(tiny_llama):
    """backbone_learn_rate_scale = 0.25: after one optimizer step the backbone has
    moved a quarter as far as with 1.0 (Adam's first step is lr * sign-like), while
    the NER head, on thinc's own rate, moves the same in both."""
    from spacy.util import fix_random_seed

    moved = {}
    for scale in (1.0, 0.25):
        fix_random_seed(0)
        nlp = make_nlp(tiny_llama, backbone_learn_rate_scale=scale)
        examples = [Example.from_dict(nlp.make_doc(t), {"entities": e}) for t, e in TRAIN]
        nlp.initialize(lambda: examples)
        optimizer = Adam(1e-3, use_averages=False)
        backbone = nlp.get_pipe("transformer").model.shims[0]._model
        before = {n: p.detach().clone() for n, p in backbone.named_parameters()}
        for _ in range(2):  # the first update has no gradient for the backbone yet
            nlp.update(examples, sgd=optimizer)
        moved[scale] = torch.stack([(p.detach() - before[n]).abs().max() for n, p in backbone.named_parameters()])
    assert moved[1.0].max() > 0
    torch.testing.assert_close(moved[0.25], moved[1.0] * 0.25, rtol=0.05, atol=1e-7)


def test_backbone_learn_rate_scale_is_validated(tiny_llama):
    from spacy_llama_ner import BackboneSettings

    for wrong in (0, -1.0, "fast", True):
        with pytest.raises(ConfigError, match=r"backbone_learn_rate_scale: must be a number in \(0, 100\]"):
            BackboneSettings(name=str(tiny_llama), backbone_learn_rate_scale=wrong)

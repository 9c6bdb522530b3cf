"""The backbone's optimizer step as one torch AdamW step: the same update as thinc's
per-parameter Adam (clipping, schedule, decoupled weight decay), used by the shim
for thinc's Adam only, and training a pipeline with it."""
import copy

import pytest
import torch
from spacy.training import Example
from thinc.api import Adam, PyTorchShim, RAdam, SGD

from conftest import TRAIN, make_nlp
from spacy_llama_ner.optimizer import TorchAdamStep, runs_as_torch_adamw


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

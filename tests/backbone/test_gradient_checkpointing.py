"""gradient_checkpointing: validated, gives the gradients of a plain backward pass,
really recomputes each layer in training (and only there; with a number N, only the
lowest N layers), and a saved pipeline keeps it."""
import pytest
import spacy
import torch
from confection import ConfigValidationError
from spacy.training import Example

from conftest import TRAIN, make_nlp
from spacy_llama_ner import BackboneSettings, ConfigError


def encoder_of(nlp):
    return nlp.get_pipe("transformer").model.shims[0]._model


def count_layer_runs(encoder):
    """A list that grows by one each time the first decoder layer starts to run (a
    pre-hook: torch stops a recomputation as soon as it has what backward needs)."""
    runs = []
    encoder.backbone.layers[0].register_forward_pre_hook(lambda *_: runs.append(1))
    return runs


def initialized(nlp):
    examples = [Example.from_dict(nlp.make_doc(t), {"entities": e}) for t, e in TRAIN]
    nlp.initialize(lambda: examples)
    return examples


def test_gradient_checkpointing_must_be_true_false_or_a_number_of_layers(tiny_llama):
    with pytest.raises(ConfigValidationError, match=r"gradient_checkpointing\s+at root: 'yes' is not <class 'bool'>"):
        make_nlp(tiny_llama, gradient_checkpointing="yes")
    for wrong in ("yes", -1, 2.5):
        with pytest.raises(ConfigError, match=r"gradient_checkpointing: must be true, false or a number of layers "
                                              r"\(the lowest ones, 0 = none\), got " + repr(wrong).replace(".", r"\.")):
            BackboneSettings(name=str(tiny_llama), gradient_checkpointing=wrong)
    nlp = make_nlp(tiny_llama, gradient_checkpointing=5)  # the tiny model has 4 layers
    with pytest.raises(ConfigError, match=r"gradient_checkpointing: is 5 but the model has 4 layers; "
                                          r"allowed values: true, false or 0 to 4"):
        nlp.initialize()


@pytest.mark.parametrize("attention", ["causal", "bidirectional"])
def test_same_gradients_as_a_plain_backward_pass(tiny_llama, attention):
    nlp = make_nlp(tiny_llama, attention=attention, with_ner=False)
    nlp.initialize()
    encoder = encoder_of(nlp)
    encoder.train()
    runs = count_layer_runs(encoder)
    # two rows of different length: the padded (bidirectional: masked) path too
    input_ids = torch.tensor([[5, 17, 42, 8, 99, 3], [7, 21, 64, 0, 0, 0]])
    attention_mask = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0]])
    target = torch.randn(2, 6, encoder.backbone.config.hidden_size, generator=torch.Generator().manual_seed(0))

    top_runs = []  # the last layer: recomputed only when every layer is
    encoder.backbone.layers[-1].register_forward_pre_hook(lambda *_: top_runs.append(1))
    num_layers = len(encoder.backbone.layers)

    def gradients(checkpointed_layers):
        encoder.checkpoint_layers = checkpointed_layers
        encoder.zero_grad(set_to_none=True)
        runs.clear()
        top_runs.clear()
        hidden = encoder(input_ids, attention_mask)
        (hidden * target).sum().backward()
        return {name: p.grad.clone() for name, p in encoder.named_parameters()}, (len(runs), len(top_runs))

    plain, plain_runs = gradients(0)
    assert plain_runs == (1, 1)
    for checkpointed_layers, expected_runs in ((num_layers, (2, 2)), (2, (2, 1))):
        checkpointed, checkpointed_runs = gradients(checkpointed_layers)
        assert checkpointed_runs == expected_runs  # the backward pass ran the checkpointed layers again
        assert plain.keys() == checkpointed.keys()
        for name in plain:
            torch.testing.assert_close(checkpointed[name], plain[name], rtol=1e-5, atol=1e-7, msg=name)


def test_training_recomputes_inference_does_not_and_saving_keeps_it(tiny_llama, tmp_path):
    nlp = make_nlp(tiny_llama, gradient_checkpointing=True)
    examples = initialized(nlp)
    runs = count_layer_runs(encoder_of(nlp))
    nlp.update(examples, sgd=nlp.create_optimizer())
    assert len(runs) == 2  # one span group: forward, then again in backward
    runs.clear()
    list(nlp.pipe([t for t, _ in TRAIN]))
    assert len(runs) == 1  # no graph, nothing to recompute

    nlp.to_disk(tmp_path / "pipeline")
    again = spacy.load(tmp_path / "pipeline")
    assert again.get_pipe("transformer").model.shims[0].settings.gradient_checkpointing
    runs = count_layer_runs(encoder_of(again))
    again.update([Example(again.make_doc(e.text), e.reference) for e in examples], sgd=again.create_optimizer())
    assert len(runs) == 2


def test_a_number_of_layers_is_kept_by_a_saved_pipeline(tiny_llama, tmp_path):
    nlp = make_nlp(tiny_llama, gradient_checkpointing=2)
    initialized(nlp)
    assert encoder_of(nlp).checkpoint_layers == 2
    nlp.to_disk(tmp_path / "pipeline")
    again = spacy.load(tmp_path / "pipeline")
    assert again.get_pipe("transformer").model.shims[0].settings.gradient_checkpointing == 2
    assert encoder_of(again).checkpoint_layers == 2

"""The package's command-line tools inside spaCy's CLI: `python -m spacy llama-ner COMMAND`.

Registered through the `spacy_cli` entry point (setup.cfg), as spacy-transformers and
spacy-curated-transformers register theirs. Each command hands its arguments to the
module that implements it (its `main(argv)`), so `--help` shows that module's options
and the module stays importable and testable on its own; modules load on use, so
`python -m spacy` stays fast.
"""
import importlib
import sys

import typer
from spacy.cli import app

COMMANDS = {
    # name: (module with main(argv), one-line help)
    "convert-conll": ("spacy_llama_ner.conll", "CoNLL NER file (IOB1/IOB2/IOBES, any columns) to a .spacy DocBin"),
    "convert-gguf": ("spacy_llama_ner.convert_gguf", "A LLaMA-family .gguf file to a Hugging Face model directory"),
    "adapt": ("spacy_llama_ner.adapt", "Masked next-token prediction with bidirectional attention (LLM2Vec)"),
    "annotate": ("spacy_llama_ner.annotate", "Run a pipeline over a JSONL or text file, resumably"),
    "calibrate": ("spacy_llama_ner.confidence.calibrate", "Fit a scored pipeline's entity probability calibration on dev"),
}

llama_app = typer.Typer(
    name="llama-ner",
    help="spacy-llama-ner: LLaMA-family decoders under spaCy's NER",
    no_args_is_help=True,
)
app.add_typer(llama_app)


def _forwarding_command(name: str, module: str, help_text: str) -> None:
    @llama_app.command(
        name,
        help=f"{help_text} (options: python -m spacy llama-ner {name} --help)",
        add_help_option=False,
        context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    )
    def command(ctx: typer.Context) -> None:
        main = importlib.import_module(module).main
        sys.exit(main(ctx.args, prog=f"python -m spacy llama-ner {name}") or 0)


for _name, (_module, _help) in COMMANDS.items():
    _forwarding_command(_name, _module, _help)

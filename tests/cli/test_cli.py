"""`python -m spacy llama-ner`: the commands spaCy's CLI gains from the package."""
import subprocess
import sys

# `python -m spacy ARGS`, then (at exit) which of the named modules it imported
RUN_SPACY_AND_LIST_MODULES = """
import atexit, runpy, sys
atexit.register(lambda: print("imported:", sorted({m.split(".")[0] for m in sys.modules} & set(NAMES))))
sys.argv = ["spacy", *ARGS]
runpy.run_module("spacy", run_name="__main__")
"""


def test_spacy_commands_do_not_import_transformers_for_our_entry_point():
    """spaCy loads every `spacy_cli` entry point on each `python -m spacy` command
    (project run, evaluate, ...): ours must not pull in transformers, which took
    3.4 of the 5.4 s such a command spent starting."""
    names = ["spacy_llama_ner", "spacy_transformers", "transformers"]
    code = RUN_SPACY_AND_LIST_MODULES.replace("NAMES", repr(names)).replace("ARGS", repr(["llama-ner", "--help"]))
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "convert-conll" in result.stdout  # our entry point was loaded
    imported = [line for line in result.stdout.splitlines() if line.startswith("imported: ")]
    assert imported == ["imported: ['spacy_llama_ner']"]

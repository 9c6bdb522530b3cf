"""The README and docs/ match the code: the commands they name exist, the config
reference lists exactly the architecture's settings, and every link resolves."""
import inspect
import re

import pytest
from weasel.util import load_project_config

from conftest import ROOT
from spacy_llama_ner import LlamaTransformer

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def test_project_commands_named_in_the_readme_exist():
    config = load_project_config(ROOT)
    known = {c["name"] for c in config["commands"]} | set(config["workflows"])
    named = set(re.findall(r"spacy project run ([\w-]+) \.", (ROOT / "README.md").read_text()))
    assert named and named <= known, named - known


def test_the_config_reference_lists_every_setting_of_the_architecture():
    page = (ROOT / "docs" / "configuration.md").read_text()
    block = page.split("[components.transformer.model]\n", 1)[1].split("\n\n", 1)[0]
    documented = [line.split("=")[0].strip() for line in block.splitlines() if not line.startswith("@")]
    settings = [name for name in inspect.signature(LlamaTransformer).parameters if name != "get_spans"]
    assert documented == settings


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_links_resolve(page):
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text()):
        if not target.startswith("http"):
            assert (page.parent / target).exists(), f"{page.name} links to {target}, which is not there"


def test_the_cli_commands_in_the_docs_exist():
    from spacy_llama_ner.cli import COMMANDS

    for page in PAGES:
        for name in re.findall(r"python -m spacy llama-ner ([\w-]+)", page.read_text()):
            assert name in COMMANDS, f"{page.name} names 'llama-ner {name}'"

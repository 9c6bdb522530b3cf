"""scripts/visualize.py: errors named by kind, and a page of disagreements from two real
(tiny, trained) pipelines."""
import re
import subprocess
import sys

import spacy
from spacy.tokens import DocBin

from conftest import ROOT, TRAIN, load_script, train_tiny

visualize = load_script("visualize")


def test_each_error_has_its_kind():
    text = "Peter Smith flew to London with Siemens and Bonn ."
    gold = {(0, 11, "PER"), (20, 26, "LOC"), (32, 39, "ORG"), (44, 48, "LOC")}
    predicted = {(0, 11, "ORG"), (20, 26, "LOC"), (32, 35, "ORG"), (12, 16, "MISC")}
    assert visualize.errors(gold, predicted, text) == [
        ("wrong type", "'Peter Smith' PER as ORG"),
        ("correct", ""),
        ("wrong boundary", "'Siemens' ORG as 'Sie'"),
        ("missed", "'Bonn' LOC"),
        ("spurious", "'flew' as MISC"),
    ]


def test_examples_are_spread_over_who_is_right():
    gold = [{(0, 1, "A")}] * 4
    predictions = {
        "x": [{(0, 1, "A")}, set(), set(), {(0, 1, "A")}],
        "y": [set(), {(0, 1, "A")}, {(0, 1, "B")}, {(0, 1, "A")}],
    }
    chosen = visualize.pick_examples(gold, predictions, [5, 5, 5, 5], 10)
    assert chosen == [("only x right", 0), ("only y right", 1), ("none right", 2)]


def test_page_of_disagreements_from_two_trained_pipelines(tiny_llama, tmp_path):
    nlp_a = train_tiny(tiny_llama, "causal", steps=25)
    nlp_b = train_tiny(tiny_llama, "bidirectional", steps=4)
    nlp_a.to_disk(tmp_path / "a")
    nlp_b.to_disk(tmp_path / "b")
    blank = spacy.blank("en")
    texts = [t for t, _ in TRAIN] + ["Peter Johnson flew to Paris on Friday .", "Maria Smith works in London ."]
    gold_ents = [e for _, e in TRAIN] + [[(0, 13, "PER"), (22, 27, "LOC")], [(0, 11, "PER"), (21, 27, "LOC")]]
    docbin = DocBin()
    for text, ents in zip(texts, gold_ents):
        doc = blank(text)
        doc.ents = [doc.char_span(s, e, label=lab) for s, e, lab in ents]
        docbin.add(doc)
    docbin.to_disk(tmp_path / "gold.spacy")
    page = tmp_path / "page.html"
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "visualize.py"), str(tmp_path / "gold.spacy"), str(page),
                           f"causal={tmp_path / 'a'}", f"bidirectional={tmp_path / 'b'}", "--summary", str(tmp_path / "s.md")],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    content = page.read_text()
    shown = len(re.findall(r"sentence \d+ &middot;", content))
    assert shown >= 1 and f"{shown} sentences where the pipelines disagree" in proc.stdout
    # per pipeline, the gold entities' kinds add up to the number of gold entities
    for name in ("causal", "bidirectional"):
        row = re.search(rf"<tr><th>{name}</th>((?:<td>[\d,]+</td>)+)</tr>", content).group(1)
        counts = [int(n) for n in re.findall(r"<td>([\d,]+)</td>", row)]
        assert sum(counts[:4]) == sum(map(len, gold_ents))
    assert content.count("<div class='who'>gold</div>") == shown
    assert 'class="entity"' in content
    summary = (tmp_path / "s.md").read_text()
    for name in ("causal", "bidirectional"):
        html_row = re.search(rf"<tr><th>{name}</th>((?:<td>[\d,]+</td>)+)</tr>", content).group(1)
        markdown_row = re.search(rf"^\| {name} \|(.*)\|$", summary, re.M).group(1)
        assert re.findall(r"[\d,]+", markdown_row) == re.findall(r"[\d,]+", html_row)

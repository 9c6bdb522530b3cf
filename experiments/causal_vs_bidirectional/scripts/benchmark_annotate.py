"""Speed of the annotate command against a bare `nlp.pipe` loop, on the same texts.

    python scripts/benchmark_annotate.py PIPELINE CORPUS.spacy OUT [--n-texts 2000] [--repeats 2]

Takes the first --n-texts sentences of CORPUS as plain text, one per line, and times
whole commands (process start to exit, pipeline loading included) over them:

  bare-loop        a minimal script: spacy.load, nlp.pipe, one JSON line of entities per text
  annotate         python -m spacy llama-ner annotate (one process)
  annotate-nproc2  the same with --n-process 2
  annotate-ray2    the same with --ray local --actors 2 (Ray's start-up included)

Each runs --repeats times; the figure is the fastest. Writes OUT.json and OUT.md:
docs/s, words/s, and each command's time against the bare loop.
"""
import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import spacy
from spacy.tokens import DocBin

BARE_LOOP = """
import json, sys, spacy
nlp = spacy.load(sys.argv[1])
with open(sys.argv[2], encoding="utf-8") as src, open(sys.argv[3], "w", encoding="utf-8") as out:
    texts = (line.rstrip("\\n") for line in src)
    for doc in nlp.pipe(texts, batch_size=64):
        ents = [{"start": e.start_char, "end": e.end_char, "label": e.label_, "text": e.text} for e in doc.ents]
        out.write(json.dumps({"text": doc.text, "entities": ents}, ensure_ascii=False) + "\\n")
"""


def commands(pipeline: str, texts: Path, out_dir: Path):
    annotate = [sys.executable, "-m", "spacy", "llama-ner", "annotate", pipeline, str(texts)]
    return {
        "bare-loop": lambda out: [sys.executable, "-c", BARE_LOOP, pipeline, str(texts), str(out)],
        "annotate": lambda out: annotate + [str(out), "--no-progress"],
        "annotate-nproc2": lambda out: annotate + [str(out), "--no-progress", "--n-process", "2"],
        "annotate-ray2": lambda out: annotate + [str(out), "--no-progress", "--ray", "local", "--actors", "2"],
    }


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("pipeline")
    p.add_argument("corpus", type=Path)
    p.add_argument("out", type=Path, help="writes OUT.json and OUT.md")
    p.add_argument("--n-texts", type=int, default=2000)
    p.add_argument("--repeats", type=int, default=2)
    args = p.parse_args(argv)
    docs = list(DocBin().from_disk(args.corpus).get_docs(spacy.blank("en").vocab))[: args.n_texts]
    words = sum(len(d) for d in docs)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        texts = Path(tmp) / "texts.txt"
        texts.write_text("".join(d.text.replace("\n", " ") + "\n" for d in docs), encoding="utf-8")
        for name, command in commands(args.pipeline, texts, Path(tmp)).items():
            times = []
            for repeat in range(args.repeats):
                out = Path(tmp) / f"{name}-{repeat}.jsonl"
                for stale in (out, out.with_name(out.name + ".progress.json")):
                    stale.unlink(missing_ok=True)
                start = time.perf_counter()
                subprocess.run(command(out), check=True, capture_output=True)
                times.append(time.perf_counter() - start)
                print(f"{name}: {times[-1]:.1f} s", flush=True)
            results[name] = {"seconds": min(times), "all_seconds": times}
        reference = [json.loads(line)["entities"] for line in (Path(tmp) / "bare-loop-0.jsonl").open()]
        same = {name: [json.loads(line)["entities"] for line in (Path(tmp) / f"{name}-0.jsonl").open()] == reference
                for name in results}
    bare = results["bare-loop"]["seconds"]
    for name, r in results.items():
        r.update(docs_per_s=len(docs) / r["seconds"], words_per_s=words / r["seconds"], vs_bare=r["seconds"] / bare,
                 same_entities_as_bare=same[name])
    report = {"pipeline": args.pipeline, "texts": len(docs), "words": words, "repeats": args.repeats,
              "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}", "date": time.strftime("%Y-%m-%d"),
              "results": results}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(report, indent=1))
    lines = [
        f"{len(docs):,} texts ({words:,} words), whole commands with pipeline loading, fastest of {args.repeats}:",
        "",
        "| command | seconds | docs/s | words/s | time vs bare loop | same entities |",
        "|---|---:|---:|---:|---:|---|",
    ]
    lines += [
        f"| {name} | {r['seconds']:.1f} | {r['docs_per_s']:.1f} | {r['words_per_s']:,.0f} | {r['vs_bare']:.3f}× | "
        f"{'yes' if r['same_entities_as_bare'] else 'NO'} |"
        for name, r in results.items()
    ]
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

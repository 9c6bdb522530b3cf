"""The adaptation's cost and held-out loss as Markdown, from the files `adapt` wrote.

    python scripts/adapt_report.py ADAPTED_MODEL_DIR OUTPUT.md

Reads ADAPTED_MODEL_DIR/adapt.json (settings, time, peak memory) and adapt_log.jsonl
(held-out loss at every evaluation); nothing is typed in.
"""
import json
import sys
from pathlib import Path

from runs import read_log


def report(model_dir: Path) -> str:
    files = [model_dir / "adapt.json", model_dir / "adapt_log.jsonl"]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise SystemExit(f"not found: {', '.join(missing)} (written by python -m spacy llama-ner adapt)")
    run = json.loads(files[0].read_text())
    log = read_log(files[1])
    held_out = [(entry["step"], entry["held_out_loss"]) for entry in log if "held_out_loss" in entry]
    lora = f"LoRA r={run['lora_r']}, merged" if run["lora_r"] else "all weights"
    lines = [
        "| steps | texts per step | texts trained / held out | learning rate | trained | held-out MNTP loss before → after | time (s) | peak RSS (MB) |",
        "|---|---|---|---|---|---|---|---|",
        f"| {run['steps']} | {run['batch_size']} | {run['texts_trained']:,} / {run['texts_held_out']:,} | {run['learn_rate']:g} "
        f"| {lora} | {run['held_out_loss_before']:.3f} → {run['held_out_loss_after']:.3f} | {run['seconds']:.0f} "
        f"| {run['peak_rss_mb']:,} |",
        "",
        "| step | " + " | ".join(str(step) for step, _ in held_out) + " |",
        "|---|" + "---|" * len(held_out),
        "| held-out loss | " + " | ".join(f"{loss:.3f}" for _, loss in held_out) + " |",
    ]
    return "\n".join(lines) + "\n"


def main(model_dir: str, output: str) -> None:
    text = report(Path(model_dir))
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    Path(output).write_text(text)
    print(text)


if __name__ == "__main__":
    main(*sys.argv[1:])

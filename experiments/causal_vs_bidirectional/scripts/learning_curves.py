"""Dev F1 against training step for every run, from spaCy's own training logs.

    python scripts/learning_curves.py RUNS_DIR OUTPUT.png OUTPUT.md

Reads RUNS_DIR/NAME/train_log.jsonl (written by spaCy's ConsoleLogger.v3, one
line per evaluation) and draws one line per run; OUTPUT.md gets the same numbers
as a table (one row per evaluation step, one column per run).
"""
import sys
from pathlib import Path

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from compare import read_log, start_step  # noqa: E402


def curves(runs_dir: Path):
    """{run name: [(step, dev entity F1 in %), ...]} for runs with a training log. A
    run that continued another (`init_from_step` in its run.json) counts its steps
    from where the other stopped."""
    found = {}
    for log in sorted(runs_dir.glob("*/train_log.jsonl")):
        offset = start_step(log.parent)
        points = [(offset + e["step"], e["scores"]["ents_f"]) for e in read_log(log)]
        if points:
            found[log.parent.name] = points
    return found


def table(runs) -> str:
    steps = sorted({step for points in runs.values() for step, _ in points})
    rows = ["| step | " + " | ".join(runs) + " |", "|" + "---|" * (len(runs) + 1)]
    for step in steps:
        cells = [next((f"{f1:.1f}" for s, f1 in points if s == step), "") for points in runs.values()]
        rows.append(f"| {step} | " + " | ".join(cells) + " |")
    return "\n".join(rows) + "\n"


MARKERS = "osD^vP*"


def figure(runs, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(10, 4.5))
    for i, (name, points) in enumerate(runs.items()):
        # Step 0 is the untrained pipeline (F1 ~0); leaving it out keeps the scale readable.
        shown = [(s, f) for s, f in points if s > 0] or points
        # Ten colours repeat from the eleventh run on; the marker keeps each run apart.
        ax.plot(*zip(*shown), color=f"C{i % 10}", marker=MARKERS[i % len(MARKERS)], label=name)
    # Runs differ in length (spaCy's CNN recipe runs thousands of steps of small
    # batches, ours 1,000 of 500 words): a log scale keeps the short runs readable.
    longest, shortest = (f(points[-1][0] for points in runs.values()) for f in (max, min))
    log_scale = longest >= 4 * max(shortest, 1)
    if log_scale:
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(matplotlib.ticker.LogLocator(subs=(1, 2, 5)))
        ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda x, _: f"{x:,.0f}"))
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xlabel("training step" + (" (log scale)" if log_scale else ""))
    ax.set_ylabel("dev entity F1 (%)")
    ax.set_title("Learning curves (spaCy's training log)")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(runs_dir, output_png, output_md):
    runs = curves(Path(runs_dir))
    if not runs:
        raise SystemExit(f"no training logs in {runs_dir}/*/train_log.jsonl")
    figure(runs, Path(output_png))
    Path(output_md).write_text(table(runs))
    print(table(runs))


if __name__ == "__main__":
    main(*sys.argv[1:])

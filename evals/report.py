"""Reports: results.json, report.md and PNG plots for one or several evaluated configurations."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from evals.retrieval import KS


def write_report(out: str | Path, runs: list[dict[str, Any]], swept: dict[str, list]) -> list[Path]:
    """`runs`: [{"params": {...}, "summary": {...}, "results": [...]}]. Returns the files written."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = [out / "results.json", out / "report.md"]
    (out / "results.json").write_text(json.dumps(runs, indent=1, ensure_ascii=False))
    (out / "report.md").write_text(_markdown(runs))
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return written  # plots need the eval extra; the numbers are already written
    fig, ax = plt.subplots(figsize=(7, 4))
    labels = [_label(r["params"]) or "default" for r in runs]
    width = 0.8 / max(1, len(runs))
    for i, run in enumerate(runs):
        values = [run["summary"][f"hit@{n}"] for n in KS]
        ax.bar([x + i * width for x in range(len(KS))], values, width, label=labels[i])
    ax.set_xticks([x + width * (len(runs) - 1) / 2 for x in range(len(KS))], [f"hit@{n}" for n in KS])
    ax.set_ylim(0, 1)
    ax.set_ylabel("share of questions")
    ax.set_title("Gold page among the top-k retrieved chunks")
    if len(runs) > 1:
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "hit_at_k.png", dpi=120)
    plt.close(fig)
    written.append(out / "hit_at_k.png")
    for name, values in swept.items():
        if len(values) < 2:
            continue
        fig, ax = plt.subplots(figsize=(6, 4))
        others = sorted({_label({k: v for k, v in r["params"].items() if k != name}) for r in runs})
        for other in others:
            points = [(r["params"][name], r["summary"]["retrieval_score"]) for r in runs
                      if _label({k: v for k, v in r["params"].items() if k != name}) == other]
            xs = [str(p[0]) for p in points]
            ax.plot(xs, [p[1] for p in points], marker="o", label=other or name)
        ax.set_xlabel(name)
        ax.set_ylabel("retrieval_score")
        ax.set_ylim(0, 1)
        ax.set_title(f"retrieval_score by {name}")
        if len(others) > 1:
            ax.legend(fontsize=7)
        fig.tight_layout()
        path = out / f"retrieval_score_by_{name}.png"
        fig.savefig(path, dpi=120)
        plt.close(fig)
        written.append(path)
    return written


def _label(params: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in params.items())


def _markdown(runs: list[dict[str, Any]]) -> str:
    lines = ["# Evaluation report", ""]
    header = "| configuration | k | retrieval_score | hit@1 | hit@3 | hit@5 | hit@10 | MRR | anchor hit | p50 ms | p95 ms |"
    lines += [header, "|" + "---|" * (header.count("|") - 1)]
    for run in runs:
        s = run["summary"]
        lines.append(
            f"| {_label(run['params']) or 'default'} | {s['k']} | {s['retrieval_score']:.3f} | "
            + " | ".join(f"{s[f'hit@{n}']:.3f}" for n in KS)
            + f" | {s['mrr']:.3f} | {s['anchor_hit_rate']:.3f} | {s['latency_ms']['p50']:.1f} | {s['latency_ms']['p95']:.1f} |"
        )
    answer_runs = [r for r in runs if "answers" in r["summary"]]
    if answer_runs:
        lines += ["", "## Answers", "", "| configuration | answered | errors | prompt tokens/query | completion tokens/query | cost/query (USD) | p50 answer ms |",
                  "|---|---|---|---|---|---|---|"]
        for run in answer_runs:
            a = run["summary"]["answers"]
            lines.append(f"| {_label(run['params']) or 'default'} | {a['answered']} | {a['errors']} | {a['prompt_tokens_per_query']:.0f} | "
                         f"{a['completion_tokens_per_query']:.0f} | {a['cost_per_query_usd']:.6f} | {a['latency_ms_p50']:.0f} |")
        if answer_runs[0]["summary"]["answers"].get("cost_on"):
            lines += ["", "The same tokens, priced per query on each priced model (USD):", "",
                      "| model | cost/query | cost for the run |", "|---|---|---|"]
            n = answer_runs[0]["summary"]["questions"]
            for model, per_query in answer_runs[0]["summary"]["answers"]["cost_on"].items():
                lines.append(f"| {model} | {per_query:.6f} | {per_query * n:.4f} |")
        judged = [r for r in answer_runs if "faithfulness" in r["summary"]["answers"]]
        if judged:
            lines += ["", "## Judged", "", "| configuration | quality (1-5) | judged | faithful | judged | pairwise vs first |",
                      "|---|---|---|---|---|---|"]
            for run in judged:
                a = run["summary"]["answers"]
                q = "n/a" if a["quality_score"] is None else f"{a['quality_score']:.2f}"
                f = "n/a" if a["faithfulness"] is None else f"{a['faithfulness']:.0%}"
                lines.append(f"| {_label(run['params']) or 'default'} | {q} | {a['quality_judged']} | {f} | "
                             f"{a['faithfulness_judged']} | {a.get('pairwise_vs_first', '')} |")
    return "\n".join(lines) + "\n"

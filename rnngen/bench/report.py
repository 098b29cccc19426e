"""Reports from the benchmark's JSON: a text table, a README table (markdown), a chart (PNG).

Each names the machine the numbers came from. ``load`` also reads the plain list of rows the
earlier ``bench/bench_cpu.py`` wrote (bench/results/cpu-*-2026-11-26.json), and gives the rows of
runs made before the article's model was renamed ("seed generator ...", "seed eager loop") the
names the suite uses now; the files keep the names they were written with.
"""

from __future__ import annotations

import json
import textwrap
from typing import Any

# The names of earlier runs -> today's ("seed" was the article the generator comes from).
_OLD_NAMES = {"seed eager loop": "article eager loop", "seed GRUCell loop": "article GRUCell loop"}


def _current_names(row: dict[str, Any]) -> dict[str, Any]:
    row = dict(row)
    if isinstance(row.get("workload"), str) and row["workload"].startswith("seed generator"):
        row["workload"] = row["workload"][len("seed "):]
    for key in ("baseline", "impl"):
        if isinstance(row.get(key), str) and row[key] in _OLD_NAMES:
            row[key] = _OLD_NAMES[row[key]]
    return row


def load(path: str) -> dict[str, Any]:
    with open(path) as f:
        data = json.load(f)
    if isinstance(data, list):  # bench/bench_cpu.py's format: rows with the machine in each
        rows = [{"workload": r["workload"], "baseline": r["baseline"], "backend": "cpu", "status": "ok",
                 "baseline_s": r["baseline_s"], "rnngen_s": r["rnngen_s"], "speedup": r["speedup"],
                 "device": "cpu", "device_name": r.get("cpu"), "threads": r.get("threads"), "dtype": "float32",
                 "torch": r.get("torch"), "rnngen": r.get("rnngen")} for r in data]
        first = rows[0] if rows else {}
        machine = {k: first.get(k) for k in ("device", "device_name", "threads", "torch", "rnngen")}
        data = {"machine": machine, "settings": {"repeats": None}, "rows": rows}
    if not isinstance(data, dict) or not isinstance(data.get("rows"), list):
        raise ValueError("not a benchmark result (expected an object with 'rows')")
    return {**data, "rows": [_current_names(r) if isinstance(r, dict) else r for r in data["rows"]]}


def machine_line(machine: dict[str, Any]) -> str:
    name = machine.get("device_name") or "unknown device"
    parts = [name]
    if machine.get("device") == "cpu":
        count = machine.get("cpu_count")
        flags = machine.get("cpu_flags")
        parts[0] = f"{name}{f' ({flags})' if flags else ''}{f', {count} CPUs' if count else ''}"
    else:
        parts.append(f"CUDA {machine.get('cuda')}, cuDNN {machine.get('cudnn')}")
    parts.append(f"{machine.get('threads')} threads")
    parts.append(f"torch {machine.get('torch')}, rnngen {machine.get('rnngen')}")
    if machine.get("date"):
        parts.append(machine["date"])
    return ", ".join(str(p) for p in parts)


_QUICK = "QUICK MODE (tiny sizes, 2 rounds: a smoke test, not a measurement)"


def header(machine: dict[str, Any], settings: dict[str, Any]) -> str:
    runs = settings.get("repeats")
    how = f"median of {runs} alternating rounds" if runs else "medians"
    quick = f"\n# {_QUICK}" if settings.get("quick") else ""
    busy = f", beside {settings['busy']} busy processes" if settings.get("busy") else ""
    return (f"# {machine_line(machine)}{busy}; {settings.get('dtype', 'float32')}, {how}, "
            f"speed-up = baseline / rnngen{quick}")


_COLUMNS = (("workload", 44), ("baseline", 34), ("base ms", 9), ("backend", 9), ("rnngen ms", 9), ("speed-up", 9))


def table_head() -> str:
    names = "  ".join(f"{n:<{w}}" if i < 2 else f"{n:>{w}}" for i, (n, w) in enumerate(_COLUMNS))
    return names + "\n" + "-" * len(names)


def _ms(seconds) -> str:
    return "" if seconds is None else f"{seconds * 1e3:.2f}" if seconds < 0.01 else f"{seconds * 1e3:.1f}"


def table_line(row: dict[str, Any]) -> str:
    if row["status"] == "ok":
        cells = (row["workload"], row["baseline"], _ms(row["baseline_s"]), row["backend"], _ms(row["rnngen_s"]),
                 f"{row['speedup']:.2f}x")
        return "  ".join(f"{str(c):<{w}}" if i < 2 else f"{str(c):>{w}}"
                         for i, (c, (_, w)) in enumerate(zip(cells, _COLUMNS, strict=True)))
    who = row.get("impl") or row.get("baseline") or row.get("backend") or "the workload"
    timing = f" (baseline {_ms(row['baseline_s'])} ms)" if row.get("baseline_s") is not None else ""
    return f"{row['workload']:<44}  {who}: {row['status'].upper()}{timing}: {row.get('reason')}"


def table(result: dict[str, Any]) -> str:
    lines = [header(result["machine"], result.get("settings", {})), table_head()]
    lines += [table_line(r) for r in result["rows"]]
    return "\n".join(lines)


def markdown(result: dict[str, Any]) -> str:
    """A README table: one line per workload and baseline, one speed-up column per backend."""
    rows = [r for r in result["rows"] if r["status"] == "ok"]
    backends = list(dict.fromkeys(r["backend"] for r in rows))
    repeats = result.get("settings", {}).get("repeats")
    busy = result.get("settings", {}).get("busy")
    out = [f"Measured on {machine_line(result['machine'])}"
           f"{f', beside {busy} busy processes' if busy else ''}; "
           f"{rows[0]['dtype'] if rows else 'float32'}, "
           f"{f'median of {repeats} alternating rounds' if repeats else 'medians'}, "
           "outputs checked against the baseline first."
           + (f" {_QUICK}." if result.get("settings", {}).get("quick") else ""), ""]
    head = ["workload", "baseline", "baseline ms"]
    for b in backends:
        head += [f"rnngen `{b}` ms", "speed-up"]
    out += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines: dict[tuple[str, str], dict[str, dict]] = {}
    for r in result["rows"]:
        if r["status"] in ("ok", "no rnngen"):  # baselines measured with no rnngen backend keep their line
            lines.setdefault((r["workload"], r["baseline"]), {})[r["backend"]] = r
    for (workload, baseline), by_backend in lines.items():
        first = next(iter(by_backend.values()))
        cells = [workload, baseline, _ms(first["baseline_s"])]
        for b in backends:
            r = by_backend.get(b)
            cells += [_ms(r["rnngen_s"]), f"{r['speedup']:.1f}x"] if r else ["", ""]
        out.append("| " + " | ".join(cells) + " |")
    others = [r for r in result["rows"] if r["status"] not in ("ok", "no rnngen")]
    if others:
        out.append("")
        for r in others:
            who = r.get("impl") or r.get("baseline") or "the workload"
            out.append(f"- {r['workload']}: {who} {r['status']}: {r.get('reason')}")
    return "\n".join(out)


def matplotlib_missing() -> str | None:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return "--plot needs matplotlib: pip install 'rnngen[bench]' (or pip install matplotlib)"
    return None


def plot(result: dict[str, Any], path: str) -> None:
    """A horizontal bar chart of speed-up (log scale) per workload and baseline, one colour per
    rnngen backend, titled with the machine."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    rows = [r for r in result["rows"] if r["status"] == "ok"]
    if not rows:
        raise ValueError("no measured rows to draw")
    labels = list(dict.fromkeys(f"{r['workload']}\nvs {r['baseline']}" for r in rows))
    backends = list(dict.fromkeys(r["backend"] for r in rows))
    height = 0.8 / len(backends)
    fig, ax = plt.subplots(figsize=(10, 1.2 + 0.45 * len(labels) * max(1, len(backends) * 0.6)))
    for k, backend in enumerate(backends):
        ys, xs = [], []
        for r in rows:
            if r["backend"] == backend:
                ys.append(labels.index(f"{r['workload']}\nvs {r['baseline']}") + k * height - 0.4 + height / 2)
                xs.append(r["speedup"])
        bars = ax.barh(ys, xs, height=height, label=f"rnngen {backend}")
        for y, x in zip(ys, xs, strict=True):
            ax.annotate(f"{x:.1f}x", (x, y), xytext=(3, 0), textcoords="offset points", va="center", fontsize=7)
        del bars
    ax.axvline(1.0, color="black", linewidth=0.8)
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}x"))
    ax.set_yticks(range(len(labels)))
    ax.set_yticklabels(labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("speed-up over the baseline (baseline time / rnngen time; > 1 is faster)")
    title = "rnngen speed-ups" + (f" - {_QUICK}" if result.get("settings", {}).get("quick") else "")
    ax.set_title(title + "\n" + textwrap.fill(machine_line(result["machine"]), 110), fontsize=8)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)

"""What every suite shares: the header (what runs, about how long), rows printed as soon as they
are measured, met/missed marks against the issues' targets, the spread check with one automatic
re-run, the JSON lines and the rows kept for ``--plot``."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from recfast.bench.timing import machine, write_json

#: A row whose spread ((max - min) / median of its repeats) exceeds this is re-run once, and
#: flagged when the re-run is no steadier.
SPREAD_LIMIT = 0.20


@dataclass(frozen=True)
class Column:
    """One printed column: ``key`` of the row dict, header text, width, formatter (None: '-')."""

    key: str
    header: str
    width: int
    fmt: Callable[[Any], str] = str
    left: bool = False


def ms(v: float) -> str:
    return f"{1e3 * v:.3f}"


def us(v: float) -> str:
    return f"{1e6 * v:.1f}"


def pct(v: float) -> str:
    return f"{v:.0%}"


def x2(v: float) -> str:
    return f"{v:.2f}"


def target_mark(ratio: float | None, target: float | None, higher_is_better: bool = False) -> str:
    """'<=0.5 met' / '<=0.5 MISSED' (or '>=4 ...' when a larger ratio is better); '' without a
    target, '(no peer)' with a target but no measured ratio."""
    if target is None:
        return ""
    sign = ">=" if higher_is_better else "<="
    if ratio is None:
        return f"{sign}{target:g} (no peer)"
    ok = ratio >= target if higher_is_better else ratio <= target
    return f"{sign}{target:g} {'met' if ok else 'MISSED'}"


def say(*parts: Any) -> None:
    """Print and flush (rows must appear while the run goes on, also through a pipe)."""
    print(*parts, flush=True)


class Report:
    """One suite's table. ``add(**row)`` prints the row at once and keeps it; ``stable(call)``
    times with one re-run when the spread is too large; ``finish()`` writes the JSON lines.

    A row may carry ``ratio`` (recfast's time / a peer's, < 1 = faster, or a speed ratio with
    ``higher_is_better``), ``peer`` (the peer's name) and ``target``; the ``target`` column then
    shows whether the target was met, and ``--plot`` draws the ratios."""

    def __init__(self, args: Any, suite: str, columns: Sequence[Column], meta: dict[str, Any]):
        self.args, self.suite, self.columns, self.meta = args, suite, list(columns), meta
        self.rows: list[dict[str, Any]] = []
        self._printed_header = False
        self.flagged = 0
        self.started = time.perf_counter()

    def title(self, text: str) -> None:
        say(f"\n{text}")
        self._header_line()

    def _header_line(self) -> None:
        cells = [
            f"{c.header:<{c.width}}" if c.left else f"{c.header:>{c.width}}" for c in self.columns
        ]
        say(" ".join(cells) + "  target; notes")
        self._printed_header = True

    def stable(self, call: Callable[[], tuple], label: str = "") -> tuple:
        """``call()`` returns a tuple whose last item is the spread; above SPREAD_LIMIT it is run
        once more (a time slice lost to another process is the usual cause) and the steadier of
        the two results is kept."""
        res = call()
        if res[-1] > SPREAD_LIMIT:
            say(f"  ! {label}: spread {res[-1]:.0%} > {SPREAD_LIMIT:.0%}, re-running this row")
            again = call()
            res = again if again[-1] < res[-1] else res
        return res

    def add(self, **row: Any) -> dict[str, Any]:
        if not self._printed_header:
            self._header_line()
        row.setdefault("mark", target_mark(row.get("ratio"), row.get("target"),
                                           row.get("higher_is_better", False)))  # fmt: skip
        spreads = [v for k, v in row.items() if k.endswith("spread") and isinstance(v, float)]
        row["noisy"] = bool(spreads) and max(spreads) > SPREAD_LIMIT
        self.flagged += row["noisy"]
        cells = []
        for c in self.columns:
            v = row.get(c.key)
            s = "-" if v is None else c.fmt(v)
            cells.append(f"{s:<{c.width}}" if c.left else f"{s:>{c.width}}")
        tail = [t for t in (row["mark"], row.get("notes")) if t]
        if row["noisy"]:
            tail.append("noisy: spread > 20%")
        say(" ".join(cells) + ("  " + "; ".join(tail) if tail else ""))
        self.rows.append({"suite": self.suite, **row})
        return row

    def finish(self, note: str = "") -> list[dict[str, Any]]:
        say(
            f"({self.suite}: {time.perf_counter() - self.started:.0f} s{'; ' + note if note else ''})"
        )
        if self.flagged:
            say(
                f"{self.flagged} row(s) stayed above {SPREAD_LIMIT:.0%} spread after a re-run: "
                "another process took CPU time; read them with care (or use --repeats 9)."
            )
        write_json(getattr(self.args, "json", None), self.rows, {**self.meta, **machine()})
        collected = getattr(self.args, "collected_rows", None)
        if collected is not None:
            collected.extend(self.rows)
        return self.rows


def missing_peer(name: str, pip: str) -> None:
    say(f"{name} not installed: no peer rows here (add it with: {pip})")


def plot(rows: list[dict[str, Any]], path: str, threads: int) -> None:
    """Horizontal bars: for every row with a peer ratio, how many times faster than the peer
    recfast is (peer time / recfast time; > 1 = faster), with the target as a tick."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        say(
            f'--plot: matplotlib is not installed (pip install "recfast[plot]"); {path} not written'
        )
        return
    # (label, ratio, target, higher_is_better) per bar; a row may carry several (conv2d: fwd, bwd)
    bars = []
    for r in rows:
        if "plot_bars" in r:
            bars += [(lab, v, t, False) for lab, v, t in r["plot_bars"] if v]
        elif r.get("ratio"):
            impl = f" [{r['impl']}]" if r.get("impl") and f"[{r['impl']}]" not in r["case"] else ""
            peer = f" vs {r['peer']}" if r.get("peer") else ""
            label = r.get("plot_label") or f"{r['suite']}: {r['case']}{impl}{peer}"
            bars.append((label, r["ratio"], r.get("target"), r.get("higher_is_better", False)))
    if not bars:
        say(f"--plot: no row was compared with a peer (install one: see above); {path} not written")
        return

    def speedup(v: float, higher_is_better: bool) -> float:
        return v if higher_is_better else 1.0 / v

    labels = [b[0] for b in bars]
    vals = [speedup(b[1], b[3]) for b in bars]
    fig, ax = plt.subplots(figsize=(10, 0.28 * len(bars) + 1.5))
    colors = ["tab:green" if v >= 1 else "tab:red" for v in vals]
    # each bar runs from 1 (as fast as the peer) to the ratio: right = faster, left = slower
    ax.barh(range(len(bars)), [v - 1.0 for v in vals], left=1.0, color=colors)
    for i, (_, _, target, hib) in enumerate(bars):
        if target:
            ax.plot([speedup(target, hib)] * 2, [i - 0.4, i + 0.4], color="black", lw=2)
    ax.axvline(1.0, color="grey", lw=1, ls="--")
    ax.set_xscale("log")  # ratios: 0.5x and 2x are the same distance from 1
    ax.set_yticks(range(len(bars)), labels, fontsize=7)
    ax.invert_yaxis()
    m = machine()
    ax.set_xlabel("times faster than the peer (peer time / recfast time); black tick: target")
    ax.set_title(f"recfast {m['recfast']} vs peers, {m['cpu']}, {threads} threads", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    say(f"plot written to {path} ({len(bars)} bars)")


def stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)

"""The report's figures, drawn with matplotlib (Agg) and returned as PNG bytes.

Colours are colour-blind safe: cividis for rates, the Okabe-Ito palette for series, and no
meaning carried by colour alone (mismatches also get a text marker, series a line style).
"""
from __future__ import annotations

import io
import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 - the backend must be chosen first
from matplotlib.colors import Normalize  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402
from matplotlib.ticker import NullFormatter  # noqa: E402

from reports.results import CellStats, percentile  # noqa: E402

# Okabe & Ito (2008), "Color Universal Design"
OKABE_ITO = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442",
             "#000000")
LINE_STYLES = ("-", "--", "-.", ":")
# Okabe-Ito without its yellow, too faint for a line on white. 7 colours × 4 styles: the
# (colour, style) pairs only repeat after 28 series.
LINE_COLOURS = tuple(c for c in OKABE_ITO if c != "#F0E442")
MISMATCH = "#D55E00"   # vermillion: stands out against every cividis shade
NOT_RUN_FILL = "#e6e6e6"
RATE_CMAP = "cividis"
DPI = 150

plt.rcParams.update({
    "font.size": 10, "axes.titlesize": 12, "axes.titleweight": "bold", "axes.labelsize": 10,
    "figure.facecolor": "white", "axes.spines.top": False, "axes.spines.right": False,
})


PX_PER_INCH = 100   # the HTML shows figures at this scale at most, so a point is a point


def png_css_width(png: bytes) -> int:
    """The CSS width at which a PNG from this module shows its fonts at their nominal size."""
    width = int.from_bytes(png[16:20], "big")   # IHDR width
    return round(width * PX_PER_INCH / DPI)


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def _seconds(ms: float | None) -> str:
    if ms is None:
        return "–"
    if ms < 1000:
        return f"{ms:.0f} ms"
    return f"{ms / 1000:.1f} s"


def _text_colour(rgba) -> str:
    red, green, blue = rgba[:3]
    luminance = 0.2126 * red + 0.7152 * green + 0.0722 * blue
    return "black" if luminance > 0.45 else "white"


def cell_lines(stats: CellStats | None) -> list[str]:
    """The annotation of one grid cell (also used by the HTML table's tooltips)."""
    if stats is None or not stats.ran:
        planned = f" ({stats.planned_trials} planned)" if stats and stats.planned_trials else ""
        return ["not run" + (planned and "\n" + planned.strip())]
    lines = [f"{stats.direct}/{stats.trials} direct"]
    if stats.direct_ms:
        lines.append(f"p50 {_seconds(stats.time_to_direct(50))}")
        lines.append(f"p95 {_seconds(stats.time_to_direct(95))}")
    else:
        lines.append("never direct")
    lines.append(f"relay {100 * stats.relay_rate:.0f}%")
    if stats.failed:
        lines.append(f"failed {stats.failed}")
    if stats.mismatches:
        lines.append(f"✗ exp. {stats.expectation}")
    return lines


def nat_grid(title: str, server_tiers: list[str], client_tiers: list[str],
             cells: dict[tuple[str, str], CellStats]) -> bytes:
    """Heatmap: rows = server NAT, columns = client NAT, colour = direct rate."""
    rows, cols = len(server_tiers), len(client_tiers)
    fig, ax = plt.subplots(figsize=(1.12 * cols + 1.6, 1.12 * rows + 1.1))
    cmap = plt.get_cmap(RATE_CMAP)
    norm = Normalize(0.0, 1.0)
    for r, s_nat in enumerate(server_tiers):
        for c, c_nat in enumerate(client_tiers):
            stats = cells.get((s_nat, c_nat))
            ran = stats is not None and stats.ran
            if ran:
                colour = cmap(norm(stats.direct_rate))
                ax.add_patch(Rectangle((c, r), 1, 1, facecolor=colour, edgecolor="white", lw=2))
                ink = _text_colour(colour)
            else:
                ax.add_patch(Rectangle((c, r), 1, 1, facecolor=NOT_RUN_FILL, edgecolor="white",
                                       lw=2, hatch="///", alpha=1.0))
                ink = "#444444"
            if ran and stats.mismatches:
                ax.add_patch(Rectangle((c + 0.04, r + 0.04), 0.92, 0.92, fill=False,
                                       edgecolor=MISMATCH, lw=3.5))
            lines = cell_lines(stats)
            ax.text(c + 0.5, r + 0.5, "\n".join(lines), ha="center", va="center", color=ink,
                    fontsize=9.5, linespacing=1.15,
                    fontweight="bold" if not ran else "normal",
                    bbox=None if ran else dict(facecolor=NOT_RUN_FILL, edgecolor="none", pad=2))
    ax.set_xlim(0, cols)
    ax.set_ylim(rows, 0)
    ax.set_xticks([c + 0.5 for c in range(cols)], client_tiers)
    ax.set_yticks([r + 0.5 for r in range(rows)], server_tiers)
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.set_xlabel("client NAT tier")
    ax.set_ylabel("server NAT tier")
    ax.set_title(title, loc="left")
    mappable = plt.cm.ScalarMappable(norm=norm, cmap=cmap)
    bar = fig.colorbar(mappable, ax=ax, fraction=0.05, pad=0.03)
    bar.set_label("direct rate")
    bar.set_ticks([0, 0.25, 0.5, 0.75, 1.0], labels=["0%", "25%", "50%", "75%", "100%"])
    return _png(fig)


# Tick mantissas from sparse to dense: the sparsest set that puts enough ticks on the axis.
_TICK_MANTISSAS = ((1,), (1, 2, 5), (1, 2, 3, 5, 7), (1, 1.5, 2, 3, 4, 5, 6, 7, 8, 9))
MIN_TIME_MS = 1.0   # a log axis cannot reach 0: faster times are drawn at the left edge
MIN_TIME_SPAN = 4.0   # the axis spans at least this factor, so it gets enough ticks


def time_axis_ms(times_ms: list[float]) -> tuple[float, float]:
    """Log-axis limits in ms around the data: a 30-70 ms lab run and a 10 s LoRa run both
    fill the plot. Not out to the direct timeout: on lab data that would squeeze the curves
    into a sliver at one edge (the plateau already shows the trials that never went direct)."""
    if not times_ms:
        return 10.0, 10_000.0
    low = max(min(times_ms), MIN_TIME_MS) / 1.5
    high = max(max(times_ms), MIN_TIME_MS) * 1.5
    widen = math.sqrt(max(1.0, MIN_TIME_SPAN / (high / low)))   # one trial: still readable
    return low / widen, high * widen


def time_ticks_ms(low: float, high: float, wanted: int = 4) -> list[float]:
    """1-2-5-style ticks inside [low, high]; denser mantissas when the range is narrow."""
    first, last = math.floor(math.log10(low)), math.ceil(math.log10(high))
    for mantissas in _TICK_MANTISSAS:
        ticks = [m * 10.0 ** e for e in range(first, last + 1) for m in mantissas
                 if low <= m * 10.0 ** e <= high]
        if len(ticks) >= wanted:
            return ticks
    return ticks


def _time_label(ms: float) -> str:
    if ms < 1000:
        return f"{ms:g} ms"
    return f"{ms / 1000:g} s"


def time_to_direct_cdf(title: str, series: list[tuple[str, list[float], int]]) -> bytes:
    """One curve per series (label, times in ms of trials that went direct, all trials).

    The y axis is the share of *all* trials direct by time t, so a curve plateaus at the
    series' direct rate instead of pretending every trial got there. The x axis is log scale
    and fitted to the data (time_axis_ms)."""
    fig, ax = plt.subplots(figsize=(6.6, 4.2))
    low, high = time_axis_ms([t for _, times, _ in series for t in times])
    for index, (label, times_ms, trials) in enumerate(series):
        colour = LINE_COLOURS[index % len(LINE_COLOURS)]
        style = LINE_STYLES[index % len(LINE_STYLES)]
        times = sorted(max(t, low) for t in times_ms)
        text = f"{label}: {len(times)}/{trials} direct"
        if not times:
            ax.plot([], [], color=colour, ls=style, lw=2, label=text + " (none)")
            continue
        # from 0 at the left edge to the plateau at the right edge
        xs = [low] + times + [high]
        ys = [0.0] + [(i + 1) / trials for i in range(len(times))] + [len(times) / trials]
        ax.step(xs, ys, where="post", color=colour, ls=style, lw=2, label=text)
    ax.set_xscale("log")
    ax.set_xlim(low, high)
    ticks = time_ticks_ms(low, high)
    ax.set_xticks(ticks, [_time_label(t) for t in ticks])
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_ylim(0, 1.02)
    ax.set_yticks([0, 0.25, 0.5, 0.75, 1.0], ["0%", "25%", "50%", "75%", "100%"])
    ax.grid(True, color="#dddddd", lw=0.8)
    ax.set_xlabel("time from connect to first direct path (log scale)")
    ax.set_ylabel("share of all trials direct")
    ax.set_title(title, loc="left")
    if len(series) <= 4:
        ax.legend(loc="best", fontsize=8.5, frameon=True)
    else:   # many curves: a legend inside would hide them
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, fontsize=8.5,
                  frameon=False)
    return _png(fig)


def throughput_by_link(title: str, links: list[str], pairs: list[str],
                       values: dict[tuple[str, str], list[float]],
                       trials: dict[tuple[str, str], int]) -> bytes:
    """Grouped bars: median MB/s per (link, pair), whiskers min..max, log scale."""
    fig, ax = plt.subplots(figsize=(max(6.0, 0.9 * len(links) * max(1, len(pairs)) + 1.6), 4.4))
    width = 0.8 / max(1, len(pairs))
    positive = [v for vs in values.values() for v in vs if v > 0]
    floor = min(positive) / 3 if positive else 0.001
    for p_index, pair in enumerate(pairs):
        colour = OKABE_ITO[p_index % len(OKABE_ITO)]
        labelled = False
        for l_index, link in enumerate(links):
            x = l_index - 0.4 + width * (p_index + 0.5)
            data = [v for v in values.get((link, pair), []) if v > 0]
            n = trials.get((link, pair), 0)
            if not data:
                ax.text(x, floor * 1.15, f"no data (0/{n})" if n else "not run", ha="center",
                        va="bottom", fontsize=8, color="#444444", rotation=90)
                continue
            median = percentile(data, 50)
            # log axis: bars grow from the axis floor, not from 0
            ax.bar(x, median - floor, width * 0.9, bottom=floor, color=colour,
                   label=None if labelled else pair)
            labelled = True
            ax.vlines(x, min(data), max(data), color="black", lw=1.2)
            ax.text(x, max(data) * 1.12, _rate(median) + f"\nn={len(data)}/{n}", ha="center",
                    va="bottom", fontsize=8)
    ax.set_xlim(-0.6, len(links) - 0.4)
    ax.set_yscale("log")
    ax.set_ylim(bottom=floor, top=(max(positive) * 6 if positive else 1.0))
    ax.set_xticks(range(len(links)), links, rotation=30 if len(links) > 5 else 0, ha="right"
                  if len(links) > 5 else "center")
    ax.set_xlabel("link profile (both uplinks)")
    ax.set_ylabel("throughput (MB/s, log scale)")
    ax.set_title(title, loc="left")
    ax.grid(True, axis="y", color="#dddddd", lw=0.8, which="major")
    handles, labels = ax.get_legend_handles_labels()
    if len(set(labels)) > 1:
        ax.legend(fontsize=9)
    return _png(fig)


def _rate(mb_s: float) -> str:
    if mb_s >= 10:
        return f"{mb_s:.0f} MB/s"
    if mb_s >= 0.1:
        return f"{mb_s:.2f} MB/s"
    return f"{mb_s * 1000:.1f} kB/s"


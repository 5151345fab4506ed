"""Figures of a :class:`~pluralrm.calibration.analyze.CalibrationReport` (matplotlib, Agg).

Each function takes report tables and returns a ``matplotlib.figure.Figure``; nothing here
touches global pyplot state, so figures can be made in threads and in tests.
"""
from __future__ import annotations

import textwrap

import numpy as np

from pluralrm.calibration.tables import Matrix, Table

INK = "#1f2933"
MUTED = "#7b8794"
GRID = "#e4e7eb"
ACCENT = "#c2410c"
PALETTE = ("#2563eb", "#d97706", "#059669", "#dc2626", "#7c3aed", "#0891b2", "#db2777", "#65a30d",
           "#4b5563", "#b45309")


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=150, layout="constrained")
    fig.patch.set_facecolor("white")
    return fig


def _style(ax, grid_axis: str = "both") -> None:
    ax.set_facecolor("white")
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    for side in ("left", "bottom"):
        ax.spines[side].set_color(MUTED)
    ax.tick_params(colors=INK, labelsize=8)
    ax.grid(True, axis=grid_axis, color=GRID, linewidth=0.8)
    ax.set_axisbelow(True)


def short_label(label: str, width: int = 22) -> str:
    """``"country=NG"`` → ``"NG"`` for one attribute; long labels are shortened."""
    parts = [p.split("=", 1)[-1] for p in str(label).split(",")]
    text = " · ".join(parts)
    return text if len(text) <= width else text[: width - 1] + "…"


def group_colors(labels) -> dict[str, str]:
    return {label: PALETTE[i % len(PALETTE)] for i, label in enumerate(labels)}


def heatmap(matrix: Matrix, title: str, colorbar: str, cmap: str = "viridis", fmt: str = "{:.2f}",
            mask_diagonal: bool = False):
    """Annotated heatmap of a group × group matrix; the diagonal is outlined (or left blank)."""
    values = matrix.values.copy()
    if mask_diagonal:
        values[np.diag_indices(min(values.shape))] = np.nan
    g = values.shape[0]
    side = min(1.0 + 0.62 * g, 11.0)
    fig = _figure(side + 1.6, side)
    ax = fig.add_subplot()
    finite = values[np.isfinite(values)]
    vmin = float(min(0.0, finite.min())) if finite.size else 0.0
    vmax = float(finite.max()) if finite.size and finite.max() > vmin else vmin + 1.0
    import matplotlib

    colormap = matplotlib.colormaps[cmap].with_extremes(bad="#f3f4f6")
    image = ax.imshow(np.ma.masked_invalid(values), cmap=colormap, vmin=vmin, vmax=vmax)
    labels = [short_label(x, 14) for x in matrix.col_labels]
    ax.set_xticks(range(g), labels, rotation=45 if g > 4 else 0, ha="right" if g > 4 else "center", fontsize=8)
    ax.set_yticks(range(values.shape[0]), [short_label(x, 18) for x in matrix.row_labels], fontsize=8)
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    if g <= 16:
        norm = image.norm
        for i in range(values.shape[0]):
            for j in range(values.shape[1]):
                v = values[i, j]
                if mask_diagonal and i == j:
                    continue
                text = "–" if not np.isfinite(v) else fmt.format(v)
                shade = image.cmap(norm(v)) if np.isfinite(v) else (1, 1, 1, 1)
                light = 0.299 * shade[0] + 0.587 * shade[1] + 0.114 * shade[2] > 0.55
                ax.text(j, i, text, ha="center", va="center", fontsize=8 if g <= 8 else 6.5,
                        color=INK if light else "white", fontweight="bold" if i == j else "normal")
    from matplotlib.patches import Rectangle

    for i in range(min(values.shape)):
        ax.add_patch(Rectangle((i - 0.5, i - 0.5), 1, 1, fill=mask_diagonal, facecolor="white",
                               edgecolor=INK if not mask_diagonal else GRID, linewidth=1.6))
    bar = fig.colorbar(image, ax=ax, fraction=0.046, pad=0.03)
    bar.set_label(colorbar, fontsize=8, color=INK)
    bar.ax.tick_params(labelsize=7)
    bar.outline.set_visible(False)
    ax.set_title(title, fontsize=10, color=INK, loc="left")
    return fig


def reliability_figure(reliability: Table, calibration: Table):
    """Reliability diagrams, one panel per group (and overall), with ECE and bin counts."""
    groups = list(dict.fromkeys(reliability.columns["group"].tolist()))
    ece = dict(zip(calibration.columns["group"].tolist(), calibration.columns["ece"].tolist()))
    cols = min(4, len(groups))
    rows = int(np.ceil(len(groups) / cols))
    fig = _figure(2.55 * cols + 0.4, 2.55 * rows + 0.3)
    axes = fig.subplots(rows, cols, squeeze=False, sharex=True, sharey=True)
    colors = group_colors([g for g in groups if g != "all"])
    for k, group in enumerate(groups):
        ax = axes[k // cols][k % cols]
        _style(ax)
        mask = reliability.columns["group"] == group
        lo, hi = reliability.columns["lower"][mask], reliability.columns["upper"][mask]
        count = reliability.columns["count"][mask].astype(float)
        conf, acc = reliability.columns["confidence"][mask], reliability.columns["accuracy"][mask]
        color = colors.get(group, INK)
        ax.plot([0.5, 1.0], [0.5, 1.0], color=MUTED, linestyle="--", linewidth=1)
        full = count > 0
        width = (hi - lo)
        share = count / max(count.sum(), 1)
        ax.bar(lo, 0.5 * share / max(share.max(), 1e-12) * 0.25, width=width, bottom=0.5, align="edge",
               color=color, alpha=0.15, linewidth=0)
        for c, a in zip(conf[full], acc[full]):
            ax.plot([c, c], [c, a], color=ACCENT, linewidth=1.2, alpha=0.7)
        ax.plot(conf[full], acc[full], color=color, marker="o", markersize=3.5, linewidth=1.6)
        ax.set_xlim(0.5, 1.0)
        ax.set_ylim(0.4, 1.02)
        ax.set_title(f"{short_label(group)}   ECE {ece.get(group, np.nan):.3f}", fontsize=9, color=INK, loc="left")
        if k % cols == 0:
            ax.set_ylabel("observed accuracy", fontsize=8, color=INK)
        if k // cols == rows - 1:
            ax.set_xlabel("confidence max(p, 1−p)", fontsize=8, color=INK)
    for k in range(len(groups), rows * cols):
        axes[k // cols][k % cols].set_visible(False)
    fig.suptitle("Reliability per group (bars: share of pairs per bin; red: gap to the diagonal)",
                 fontsize=10, color=INK, x=0.01, ha="left")
    return fig


def forest_figure(calibration: Table, metrics=(("accuracy", "Accuracy ↑"), ("nll", "NLL ↓"),
                                               ("brier", "Brier ↓"), ("ece", "ECE ↓"))):
    """Per-group metrics with bootstrap intervals, one panel per metric."""
    groups = calibration.columns["group"].tolist()
    n = len(groups)
    fig = _figure(2.3 * len(metrics) + 1.2, 0.42 * n + 1.3)
    axes = fig.subplots(1, len(metrics), sharey=True, squeeze=False)[0]
    y = np.arange(n)[::-1]
    colors = group_colors([g for g in groups if g != "all"])
    for ax, (key, title) in zip(axes, metrics):
        _style(ax, "x")
        est = calibration.columns[key].astype(float)
        low, high = calibration.columns[f"{key}_low"].astype(float), calibration.columns[f"{key}_high"].astype(float)
        for i, group in enumerate(groups):
            color = INK if group == "all" else colors[group]
            if np.isfinite(low[i]) and np.isfinite(high[i]):
                ax.plot([low[i], high[i]], [y[i], y[i]], color=color, linewidth=2.2, alpha=0.55, solid_capstyle="round")
            ax.plot(est[i], y[i], "D" if group == "all" else "o", color=color, markersize=5.5)
        overall = est[groups.index("all")] if "all" in groups else np.nan
        if np.isfinite(overall):
            ax.axvline(overall, color=MUTED, linewidth=0.8, linestyle=":")
        ax.set_title(title, fontsize=9, color=INK, loc="left")
        ax.margins(x=0.15)
    axes[0].set_yticks(y, [short_label(g) for g in groups], fontsize=8)
    axes[0].set_ylim(-0.7, n - 0.3)
    fig.suptitle("Calibration per group (bars: bootstrap interval; dotted: all groups)", fontsize=10,
                 color=INK, x=0.01, ha="left")
    return fig


def retention_figure(fidelity: Table):
    """Disagreement retention per group and overall, with intervals and the 0 / 1 references."""
    groups = fidelity.columns["group"].tolist()
    est = fidelity.columns["retention"].astype(float)
    low, high = fidelity.columns["retention_low"].astype(float), fidelity.columns["retention_high"].astype(float)
    n = len(groups)
    fig = _figure(6.8, 0.45 * n + 1.5)
    ax = fig.add_subplot()
    _style(ax, "x")
    y = np.arange(n)[::-1]
    colors = group_colors([g for g in groups if g != "all"])
    for i, group in enumerate(groups):
        color = INK if group == "all" else colors[group]
        value = est[i] if np.isfinite(est[i]) else 0.0
        ax.barh(y[i], value, color=color, alpha=0.8 if group == "all" else 0.55, height=0.6)
        if np.isfinite(low[i]) and np.isfinite(high[i]):
            ax.plot([low[i], high[i]], [y[i], y[i]], color=INK, linewidth=1.3)
            ax.plot([low[i], low[i]], [y[i] - 0.12, y[i] + 0.12], color=INK, linewidth=1.3)
            ax.plot([high[i], high[i]], [y[i] - 0.12, y[i] + 0.12], color=INK, linewidth=1.3)
        label = "n/a" if not np.isfinite(est[i]) else f"{est[i]:.2f}"
        right = max(value, high[i] if np.isfinite(high[i]) else value, 0.0)
        ax.text(right + 0.03, y[i], label, fontsize=8, color=INK, va="center", fontweight="bold")
    ax.axvline(0, color=INK, linewidth=1)
    ax.axvline(1, color=ACCENT, linewidth=1.2, linestyle="--")
    top = n - 0.35
    ax.text(1.0, top, " reproduces group differences", color=ACCENT, fontsize=7.5, va="bottom")
    ax.text(0.0, top, " ignores groups", color=INK, fontsize=7.5, va="bottom")
    finite = np.concatenate([est[np.isfinite(est)], high[np.isfinite(high)], [1.2]])
    ax.set_xlim(min(0.0, float(np.nanmin(np.concatenate([low[np.isfinite(low)], [0.0]])))) - 0.05,
                max(1.3, float(finite.max()) * 1.12))
    ax.set_ylim(-0.7, n + 0.2)
    ax.set_yticks(y, [short_label(g) for g in groups], fontsize=8)
    ax.set_xlabel("predicted / noise-corrected empirical between-group divergence", fontsize=8, color=INK)
    ax.set_title("Disagreement retention", fontsize=10, color=INK, loc="left")
    return fig


def contested_figure(contested: Table, groups, limit: int = 12):
    """The most contested units: each group's preference rate on a shared 0–1 axis."""
    k = min(limit, contested.num_rows)
    fig = _figure(8.2, 0.34 * max(k, 1) + 1.5)
    ax = fig.add_subplot()
    _style(ax, "x")
    colors = group_colors(groups)
    y = np.arange(k)[::-1]
    labels = []
    for i in range(k):
        rates = [(g, contested.columns[f"rate:{g}"][i]) for g in groups]
        rates = [(g, float(r)) for g, r in rates if np.isfinite(float(r))]
        if rates:
            values = [r for _, r in rates]
            ax.plot([min(values), max(values)], [y[i], y[i]], color=GRID, linewidth=4, solid_capstyle="round", zorder=1)
        for g, r in rates:
            ax.scatter(r, y[i], s=38, color=colors[g], zorder=3, edgecolor="white", linewidth=0.6)
        prompt = " ".join(str(contested.columns["prompt"][i]).split())
        labels.append(textwrap.shorten(prompt, width=46, placeholder="…"))
    ax.axvline(0.5, color=MUTED, linewidth=0.8, linestyle=":")
    ax.set_xlim(-0.03, 1.03)
    ax.set_ylim(-0.7, max(k, 1) - 0.3)
    ax.set_yticks(y, labels, fontsize=7.5)
    ax.set_xlabel("share preferring the first response", fontsize=8, color=INK)
    handles = [ax.scatter([], [], s=38, color=colors[g], label=short_label(g)) for g in groups]
    fig.legend(handles=handles, loc="outside lower center", ncol=min(len(groups), 8), frameon=False, fontsize=8)
    ax.set_title("Most contested comparisons", fontsize=10, color=INK, loc="left")
    return fig


def png_bytes(fig) -> bytes:
    """The figure as PNG bytes."""
    import io

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", facecolor="white")
    return buffer.getvalue()

"""Training-side figures: mechanism measures against PLW, and prompt / completion loss curves.

Loss curves come from each cell's Trainer log history. The sweep writes it to
`STUDY_DIR/cells/<cell>/train/log_history.json` (a JSON list of log dicts with step, loss,
prompt_loss, completion_loss, eval_prompt_loss, ...); callers may also pass the mapping directly.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
from matplotlib import colormaps
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from plw.analysis.mechanisms import LABELS, MEASURES
from plw.analysis.transform import plw_to_w
from plw.report.plotting import PLW_TICK_LABELS, PLW_TICKS, colors, new_figure, plw_axis, suptitle

LOSS_KEYS = (
    ("prompt_loss", "eval_prompt_loss", "prompt loss"),
    ("completion_loss", "eval_completion_loss", "completion loss"),
)


def load_histories(study_dir: Path) -> tuple[dict[str, list[dict]], list[str]]:
    """Read every `cells/<cell>/train/log_history.json` under a study directory.

    Returns:
        (histories by cell id, warnings about files that could not be read).
    """
    out: dict[str, list[dict]] = {}
    warnings: list[str] = []
    for path in sorted(Path(study_dir).glob("cells/*/train/log_history.json")):
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as err:
            warnings.append(f"{path}: unreadable log history ({err}); left out of the loss curves")
            continue
        if isinstance(data, list):
            out[path.parent.parent.name] = [d for d in data if isinstance(d, dict)]
    return out, warnings


def mechanism_figure(analysis: dict) -> Figure | None:
    """Each mechanism measure (and retention) against PLW, one line per (dataset, model)."""
    table = pd.DataFrame((analysis.get("mechanisms") or {}).get("table") or [])
    if table.empty:
        return None
    order = [m for m in MEASURES if m in set(table["measure"])]
    order += sorted(set(table["measure"]) - set(order))
    fig, axes = new_figure(len(order), ncols=3, panel_size=(4.0, 3.0))
    groups = sorted(table.groupby(["dataset", "model"]).groups)
    palette = dict(zip(groups, colors(len(groups)), strict=True))
    for ax, measure in zip(axes, order, strict=True):
        for (dataset, model), g in table[table["measure"] == measure].groupby(["dataset", "model"]):
            g = g.sort_values("plw")
            ax.errorbar(
                plw_to_w(g["plw"].to_numpy()),
                g["mean"],
                yerr=g["sd"].fillna(0.0),
                fmt="o-",
                ms=3,
                capsize=2,
                color=palette[(dataset, model)],
                label=f"{dataset} / {model}",
            )
        ax.set_title(LABELS.get(measure, measure), fontsize=10)
        plw_axis(ax, sorted(table["plw"].unique()))
        ax.legend(fontsize=7)
    suptitle(fig, "Mechanism measures against PLW (mean ± sd over seeds)")
    return fig


def _cell_plw(cell: str, lookup: dict[str, float]) -> float | None:
    if cell in lookup:
        return lookup[cell]
    m = re.search(r"(?:^|,)plw=([0-9.eE+-]+)", cell)
    return float(m.group(1)) if m else None


def loss_figure(histories: dict[str, list[dict]], cell_plw: dict[str, float]) -> Figure | None:
    """Prompt and completion loss against step, one line per cell coloured by its PLW.

    Training losses are lines; evaluation losses (eval_*), when logged, are dashed with markers.
    """
    frames = {c: pd.DataFrame(h) for c, h in histories.items() if h}
    frames = {
        c: f for c, f in frames.items() if "step" in f and any(k in f for keys in LOSS_KEYS for k in keys[:2])
    }
    if not frames:
        return None
    fig, axes = new_figure(2, ncols=2, panel_size=(5.0, 3.4))
    cmap, norm = colormaps["viridis"], Normalize(0.0, 1.0)
    for ax, (train_key, eval_key, title) in zip(axes, LOSS_KEYS, strict=True):
        for cell, f in sorted(frames.items()):
            plw = _cell_plw(cell, cell_plw)
            color = cmap(norm(plw_to_w(plw))) if plw is not None else "0.5"
            for key, style in ((train_key, "-"), (eval_key, "--o")):
                if key in f:
                    rows = f[["step", key]].dropna()
                    ax.plot(rows["step"], rows[key], style, color=color, lw=1.2, ms=3)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("step")
        ax.set_ylabel("loss")
        ax.grid(True, alpha=0.3)
    bar = fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=axes, shrink=0.9)
    bar.set_ticks([plw_to_w(p) for p in PLW_TICKS], labels=list(PLW_TICK_LABELS))
    bar.set_label("PLW")
    suptitle(fig, "Prompt and completion loss per cell (solid: training, dashed: evaluation)")
    return fig

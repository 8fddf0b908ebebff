"""Reference values for Callaway & Sant'Anna on an unbalanced panel, from moderndid.

Run with the benchmark environment (moderndid 0.2.0 installed)::

    .venv-bench/bin/python scripts/cs_unbalanced_reference.py

It reads R's ``mpdta`` from ``../shared/reference/mpdta.csv``, drops a seeded random 10% of the
rows (so the panel is unbalanced), runs ``moderndid.att_gt(..., allow_unbalanced_panel=True)`` for
several configurations and writes every ATT(g,t) with its analytic standard error, the ``simple``,
``group`` and ``dynamic`` aggregations of ``moderndid.aggte`` and the Wald pre-test to
``tests/did/reference/cs_unbalanced_moderndid.csv``. The dropped rows (0-based positions in the
CSV file) are written to the same file (``kind == "dropped_row"``), so the tests rebuild the exact
sample without moderndid or a random number generator.

moderndid 0.2.0 accepts ``allow_unbalanced_panel=True`` but its preprocessing leaves the data
flagged as a panel without outcome tensors, so ``compute_att_gt`` fails. The wrapper below makes
the three changes R ``did`` makes in ``pre_process_did2`` for an unbalanced panel before
moderndid's own repeated cross-section code runs: ``panel`` set to ``False``, a ``.rowid`` column
equal to the unit id, and the covariate matrix built from every observation (``model.matrix`` on
the long data). It also orders the unit-level data (groups and weights used by ``aggte``) by unit
id, the order of the influence-function rows moderndid builds (``np.unique`` of the ids).
"""

from __future__ import annotations

import importlib
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
from moderndid import aggte, att_gt

REPO = Path(__file__).resolve().parents[1]
MPDTA = REPO.parent / "shared" / "reference" / "mpdta.csv"
OUT = REPO / "tests" / "did" / "reference" / "cs_unbalanced_moderndid.csv"
SEED = 20240601
DROP_SHARE = 0.10

CONFIGS = {
    "reg_never": {"est_method": "reg", "xformla": None, "control_group": "nevertreated"},
    "reg_notyet": {"est_method": "reg", "xformla": None, "control_group": "notyettreated"},
    "dr_never": {"est_method": "dr", "xformla": None, "control_group": "nevertreated"},
    "reg_lpop_never": {"est_method": "reg", "xformla": "~lpop", "control_group": "nevertreated"},
    "dr_lpop_never": {"est_method": "dr", "xformla": "~lpop", "control_group": "nevertreated"},
    "ipw_lpop_never": {"est_method": "ipw", "xformla": "~lpop", "control_group": "nevertreated"},
    "dr_lpop_notyet": {"est_method": "dr", "xformla": "~lpop", "control_group": "notyettreated"},
    "ipw_lpop_notyet": {"est_method": "ipw", "xformla": "~lpop", "control_group": "notyettreated"},
    "dr_lpop_universal": {
        "est_method": "dr",
        "xformla": "~lpop",
        "control_group": "nevertreated",
        "base_period": "universal",
    },
    "reg_notyet_universal": {
        "est_method": "reg",
        "xformla": None,
        "control_group": "notyettreated",
        "base_period": "universal",
    },
}

_att_gt_module = importlib.import_module("moderndid.did.att_gt")
_compute_att_gt = _att_gt_module.compute_att_gt


def _as_unbalanced(dp, n_jobs=1):
    """Run moderndid's repeated cross-section path with R's unbalanced-panel set-up."""
    cfg = dp.config
    if "unbalanced" in str(cfg.data_format).lower():
        cfg.panel = False
        dp.data = dp.data.with_columns(pl.col(cfg.idname).alias(".rowid"))
        covariates = [v.strip() for v in cfg.xformla.lstrip("~").split("+") if v.strip() != "1"]
        columns = [np.ones(len(dp.data))] + [dp.data[v].to_numpy() for v in covariates]
        dp.covariates_matrix = np.column_stack(columns)
        dp.time_invariant_data = dp.time_invariant_data.sort(cfg.idname)
    return _compute_att_gt(dp, n_jobs=n_jobs)


_att_gt_module.compute_att_gt = _as_unbalanced


def dropped_rows(n_rows: int) -> np.ndarray:
    """Positions of the rows to drop: a seeded 10% sample without replacement, sorted."""
    rng = np.random.default_rng(SEED)
    return np.sort(rng.choice(n_rows, size=round(DROP_SHARE * n_rows), replace=False))


def _rows(config: str, kind: str, **columns) -> pd.DataFrame:
    frame = pd.DataFrame(columns)
    frame.insert(0, "kind", kind)
    frame.insert(0, "config", config)
    return frame


def run_config(name: str, data: pd.DataFrame, options: dict) -> list[pd.DataFrame]:
    """ATT(g,t), aggregations and pre-test of one configuration."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = att_gt(
            data,
            yname="lemp",
            tname="year",
            idname="countyreal",
            gname="first.treat",
            allow_unbalanced_panel=True,
            boot=False,
            cband=False,
            **options,
        )
        parts = [
            _rows(
                name,
                "att_gt",
                group=fit.groups,
                time=fit.times,
                att=fit.att_gt,
                se=fit.se_gt,
            )
        ]
        for kind in ("simple", "group", "dynamic"):
            agg = aggte(fit, type=kind, boot=False, cband=False)
            parts.append(_rows(name, f"{kind}_overall", att=[agg.overall_att], se=[agg.overall_se]))
            if kind != "simple":
                key = "group" if kind == "group" else "rel_time"
                parts.append(
                    _rows(
                        name,
                        kind,
                        **{key: agg.event_times},
                        att=agg.att_by_event,
                        se=agg.se_by_event,
                    )
                )
    if fit.wald_stat is not None:
        parts.append(_rows(name, "pretest", att=[float(fit.wald_stat)]))
    return parts


def main() -> None:
    mpdta = pd.read_csv(MPDTA)
    drop = dropped_rows(len(mpdta))
    data = mpdta.drop(index=drop).reset_index(drop=True)
    parts = [_rows("sample", "dropped_row", row=drop)]
    for name, options in CONFIGS.items():
        parts.extend(run_config(name, data, options))
    out = pd.concat(parts, ignore_index=True)
    out = out[["config", "kind", "group", "time", "rel_time", "row", "att", "se"]]
    for column in ("group", "time", "rel_time", "row"):
        out[column] = out[column].astype("Int64")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    out.to_csv(OUT, index=False, float_format="%.17g")
    print(f"wrote {len(out)} rows to {OUT.relative_to(REPO)}")


if __name__ == "__main__":
    main()

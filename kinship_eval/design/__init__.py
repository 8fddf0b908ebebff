"""Evaluation design: the comparison group, covariate balance, and power.

* :func:`select_comparison` chooses the comparison LAs as a :class:`ComparisonSpec` says (all
  non-pilot LAs, excluding contaminated LAs, nearest-neighbour matching, synthetic-control
  weights) and returns a :class:`ComparisonResult`;
* :func:`balance_table` and :func:`love_plot` report standardised mean differences and variance
  ratios before and after (:class:`BalanceResult`);
* :func:`simulate_power` and :func:`run_power` simulate power curves and minimum detectable
  effects of placebo pilots on the real pre-pilot panel (:class:`PowerResult`), with an analytic
  cross-check (:func:`analytic_mde`, :func:`estimate_error_structure`).

Names are imported on first use, so that ``from kinship_eval.design.specs import ComparisonSpec``
(used by the analysis spec) stays as light as pydantic.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "ErrorStructure": "analytic",
    "analytic_mde": "analytic",
    "analytic_mde_table": "analytic",
    "analytic_se": "analytic",
    "did_variance": "analytic",
    "estimate_error_structure": "analytic",
    "SMD_CONVENTION": "balance",
    "BalanceResult": "balance",
    "balance_table": "balance",
    "love_plot": "balance",
    "standardised_mean_difference": "balance",
    "variance_ratio": "balance",
    "ComparisonResult": "comparison",
    "select_comparison": "comparison",
    "pre_period_features": "features",
    "PowerResult": "power",
    "load_power_spec": "power",
    "minimum_detectable_effect": "power",
    "run_power": "power",
    "simulate_power": "power",
    "COMPARISON_METHODS": "specs",
    "ComparisonSpec": "specs",
    "PowerSpec": "specs",
    "comparison_spec": "specs",
}

__all__ = [
    "COMPARISON_METHODS",
    "SMD_CONVENTION",
    "BalanceResult",
    "ComparisonResult",
    "ComparisonSpec",
    "ErrorStructure",
    "PowerResult",
    "PowerSpec",
    "analytic_mde",
    "analytic_mde_table",
    "analytic_se",
    "balance_table",
    "comparison_spec",
    "did_variance",
    "estimate_error_structure",
    "load_power_spec",
    "love_plot",
    "minimum_detectable_effect",
    "pre_period_features",
    "run_power",
    "select_comparison",
    "simulate_power",
    "standardised_mean_difference",
    "variance_ratio",
]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        module = importlib.import_module(f"kinship_eval.design.{_EXPORTS[name]}")
        value = getattr(module, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'kinship_eval.design' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])


if TYPE_CHECKING:  # pragma: no cover
    from kinship_eval.design.analytic import (
        ErrorStructure,
        analytic_mde,
        analytic_mde_table,
        analytic_se,
        did_variance,
        estimate_error_structure,
    )
    from kinship_eval.design.balance import (
        SMD_CONVENTION,
        BalanceResult,
        balance_table,
        love_plot,
        standardised_mean_difference,
        variance_ratio,
    )
    from kinship_eval.design.comparison import ComparisonResult, select_comparison
    from kinship_eval.design.features import pre_period_features
    from kinship_eval.design.power import (
        PowerResult,
        load_power_spec,
        minimum_detectable_effect,
        run_power,
        simulate_power,
    )
    from kinship_eval.design.specs import (
        COMPARISON_METHODS,
        ComparisonSpec,
        PowerSpec,
        comparison_spec,
    )

"""One entry point for every estimator: ``fit(name, data, ...)``.

Maps the generic options of ``kinship-eval estimate`` (and of specs) onto each estimator's own
arguments, so scripts, the command line and randomization inference can rerun any estimator on any
long panel.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Sequence
from typing import Any

import pandas as pd

from kinship_eval.did.results import DiDResults
from kinship_eval.errors import InputError, SpecError

ESTIMATORS: tuple[str, ...] = (
    "twfe",
    "event_study",
    "cs",
    "sunab",
    "imputation",
    "sdid",
    "sc",
    "poisson",
)
#: Variance methods of the synthetic estimators, selectable through ``inference``.
SYNTHETIC_VARIANCE = ("placebo", "jackknife", "bootstrap")


def _twfe(data: pd.DataFrame, common: dict[str, Any], **kw: Any) -> DiDResults:
    from kinship_eval.did.twfe import twfe

    return twfe(data, covariates=kw["covariates"], source=kw["source"], **common, **kw["options"])


def _event_study(data: pd.DataFrame, common: dict[str, Any], **kw: Any) -> DiDResults:
    from kinship_eval.did.event_study import event_study

    return event_study(data, covariates=kw["covariates"], **common, **kw["options"])


def _synthetic(method: str) -> Callable[..., DiDResults]:
    def run(data: pd.DataFrame, common: dict[str, Any], **kw: Any) -> DiDResults:
        from kinship_eval.did.synthetic import synthetic_did

        variance = kw["inference"] or "placebo"
        if variance not in SYNTHETIC_VARIANCE:
            raise SpecError(
                f"inference {variance!r} is not available for {method}; "
                f"choose one of {', '.join(SYNTHETIC_VARIANCE)}"
            )
        if kw["covariates"]:
            raise SpecError(f"{method} does not take covariates")
        return synthetic_did(
            data,
            method=method,
            variance=variance,
            reps=kw["reps"],
            seed=kw["seed"],
            **common,
            **kw["options"],
        )

    return run


def _callaway_santanna(data: pd.DataFrame, common: dict[str, Any], **kw: Any) -> DiDResults:
    from kinship_eval.did.staggered import callaway_santanna

    inference = kw["inference"] or "analytic"
    if inference not in ("analytic", "cluster", "multiplier"):
        raise SpecError(
            f"inference {inference!r} is not available for cs; choose analytic or multiplier "
            "(or randomization / wild_bootstrap through kinship_eval.did.inference)"
        )
    return callaway_santanna(
        data,
        covariates=kw["covariates"],
        control_group=kw["control_group"],
        bootstrap=inference == "multiplier",
        reps=kw["reps"],
        seed=kw["seed"],
        source=kw["source"],
        **common,
        **kw["options"],
    )


def _sun_abraham(data: pd.DataFrame, common: dict[str, Any], **kw: Any) -> DiDResults:
    from kinship_eval.did.sunab import sun_abraham

    control = "last_treated" if kw["control_group"] == "last_treated" else "never_treated"
    return sun_abraham(
        data,
        covariates=kw["covariates"],
        control_cohort=control,
        source=kw["source"],
        **common,
        **kw["options"],
    )


def _imputation(data: pd.DataFrame, common: dict[str, Any], **kw: Any) -> DiDResults:
    from kinship_eval.did.imputation import imputation

    return imputation(
        data, covariates=kw["covariates"], source=kw["source"], **common, **kw["options"]
    )


def _poisson(data: pd.DataFrame, common: dict[str, Any], **kw: Any) -> DiDResults:
    from kinship_eval.did.counts import poisson_did

    return poisson_did(data, covariates=kw["covariates"], **common, **kw["options"])


_REGISTRY: dict[str, Callable[..., DiDResults]] = {
    "twfe": _twfe,
    "event_study": _event_study,
    "cs": _callaway_santanna,
    "sunab": _sun_abraham,
    "imputation": _imputation,
    "sdid": _synthetic("sdid"),
    "sc": _synthetic("sc"),
    "poisson": _poisson,
}


def fit(
    estimator: str,
    data: pd.DataFrame,
    *,
    unit: str,
    time: str,
    outcome: str,
    first_treated: str,
    control_group: str = "never_treated",
    covariates: Sequence[str] = (),
    inference: str | None = None,
    reps: int = 999,
    seed: int | None = None,
    level: float = 0.95,
    source: str = "panel",
    **options: Any,
) -> DiDResults:
    """Fit the named estimator and return its results.

    Parameters
    ----------
    estimator
        One of :data:`ESTIMATORS`.
    data
        Long panel, one row per unit and period.
    unit, time, outcome, first_treated
        Column names (``first_treated`` 0 or missing = never treated).
    control_group
        ``never_treated`` or ``not_yet_treated`` (staggered estimators).
    covariates
        Covariate columns, for estimators that take them.
    inference
        The inference method; ``None`` gives each estimator's default.
    reps, seed
        Replications and seed for resampling inference.
    level
        Confidence level.
    options
        Estimator-specific keyword options passed through unchanged.
    """
    if estimator not in _REGISTRY:
        known = ", ".join(sorted(_REGISTRY))
        raise SpecError(f"estimator {estimator!r} is not available; choose one of {known}")
    common = {
        "unit": unit,
        "time": time,
        "outcome": outcome,
        "first_treated": first_treated,
        "level": level,
    }
    try:
        return _REGISTRY[estimator](
            data,
            common,
            control_group=control_group,
            covariates=tuple(covariates),
            inference=inference,
            reps=reps,
            seed=seed,
            source=source,
            options=options,
        )
    except TypeError as exc:
        if "unexpected keyword argument" not in str(exc):
            raise
        valid = ", ".join(valid_options(estimator))
        raise SpecError(
            f"{exc.args[0].split('() ')[-1]} for estimator {estimator!r}; valid options: {valid}"
        ) from None


#: The function behind each estimator name, for listing its options.
_TARGETS = {
    "twfe": ("kinship_eval.did.twfe", "twfe"),
    "event_study": ("kinship_eval.did.event_study", "event_study"),
    "cs": ("kinship_eval.did.staggered", "callaway_santanna"),
    "sunab": ("kinship_eval.did.sunab", "sun_abraham"),
    "imputation": ("kinship_eval.did.imputation", "imputation"),
    "sdid": ("kinship_eval.did.synthetic", "synthetic_did"),
    "sc": ("kinship_eval.did.synthetic", "synthetic_did"),
    "poisson": ("kinship_eval.did.counts", "poisson_did"),
}
_GENERIC = {"data", "unit", "time", "outcome", "first_treated", "level", "source", "covariates"}


def valid_options(estimator: str) -> list[str]:
    """Estimator-specific keyword options accepted by :func:`fit` for ``estimator``."""
    module, name = _TARGETS[estimator]
    func = getattr(importlib.import_module(module), name)
    return sorted(p for p in inspect.signature(func).parameters if p not in _GENERIC)


#: Inference methods selectable by name, on top of each estimator's own.
INFERENCE_METHODS: tuple[str, ...] = (
    "cluster",
    "wild_bootstrap",
    "randomization",
    "placebo",
    "jackknife",
    "bootstrap",
    "multiplier",
)


def fit_with_inference(
    estimator: str,
    data: pd.DataFrame,
    *,
    unit: str,
    time: str,
    outcome: str,
    first_treated: str,
    inference: str | None = None,
    control_group: str = "never_treated",
    covariates: Sequence[str] = (),
    reps: int = 999,
    seed: int | None = None,
    strata: str | None = None,
    level: float = 0.95,
    source: str = "panel",
    **options: Any,
) -> DiDResults:
    """Fit an estimator and attach the named inference.

    ``wild_bootstrap`` (TWFE only) and ``randomization`` (every estimator) come from
    :mod:`kinship_eval.did.inference`; the other methods are the estimators' own (``cluster``
    for the regression estimators, ``multiplier`` for CS, ``placebo``/``jackknife``/``bootstrap``
    for SDID and SC). ``None`` gives the estimator's default. A method known to over-reject for
    the number of treated units adds a note (and an :class:`InferenceWarning`).
    """
    from kinship_eval.did.inference import (
        check_inference_choice,
        randomization_inference,
        wild_bootstrap_did,
    )

    if inference is not None and inference not in INFERENCE_METHODS:
        raise SpecError(
            f"unknown inference {inference!r}; choose one of {', '.join(INFERENCE_METHODS)}"
        )
    columns = {"unit": unit, "time": time, "outcome": outcome, "first_treated": first_treated}
    if inference == "wild_bootstrap":
        if estimator != "twfe":
            raise SpecError(
                f"wild_bootstrap inference is available for twfe, not {estimator}; "
                "use randomization for other estimators"
            )
        result = wild_bootstrap_did(
            data, covariates=covariates, reps=reps, seed=seed, level=level, **columns, **options
        )
    elif inference == "randomization":
        fast = {"inference": "jackknife"} if estimator in ("sdid", "sc") else {}
        result = randomization_inference(
            data,
            estimator=estimator,
            reps=reps,
            strata=strata,
            seed=seed,
            level=level,
            covariates=covariates,
            **columns,
            **options,
            **fast,
        )
    else:
        own = None if inference == "cluster" else inference
        result = fit(
            estimator,
            data,
            control_group=control_group,
            covariates=covariates,
            inference=own,
            reps=reps,
            seed=seed,
            level=level,
            source=source,
            **columns,
            **options,
        )
    try:
        warnings = check_inference_choice(
            result.inference, result.n_treated_units, result.n_units, warn=inference is not None
        )
    except InputError:  # an estimator-specific method the checker does not rate
        warnings = []
    for warning in warnings:
        if warning not in result.notes:
            result.notes.append(warning)
    return result

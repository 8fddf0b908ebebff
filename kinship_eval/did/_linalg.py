"""Numerical routines shared by the staggered-adoption estimators.

Everything here works on whole arrays: weighted logistic regression by Newton-Raphson, sums of
rows within groups (units or clusters), a cluster-robust sandwich, the multiplier bootstrap on
influence functions (Mammen or Rademacher weights) with its interquartile-range standard errors and
sup-t critical values, and a reciprocal condition number matching R's ``rcond``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
from scipy import linalg, sparse, special, stats

EPS = float(np.finfo(float).eps)
#: Standard errors at or below this are treated as zero (as in R ``did``).
SE_FLOOR = math.sqrt(EPS) * 10.0

_SQRT5 = math.sqrt(5.0)
_MAMMEN_LOW = (1.0 - _SQRT5) / 2.0
_MAMMEN_HIGH = (1.0 + _SQRT5) / 2.0
_MAMMEN_P_LOW = (_SQRT5 + 1.0) / (2.0 * _SQRT5)


def rcond(a: np.ndarray) -> float:
    """Reciprocal condition number of a square matrix in the 1-norm (0 when singular)."""
    a = np.atleast_2d(np.asarray(a, dtype=float))
    if a.size == 0 or not np.all(np.isfinite(a)):
        return 0.0
    with np.errstate(all="ignore"):
        cond = np.linalg.cond(a, 1)
    if not np.isfinite(cond) or cond == 0:
        return 0.0
    return float(1.0 / cond)


def logit_fit(
    x: np.ndarray,
    d: np.ndarray,
    w: np.ndarray,
    *,
    max_iter: int = 100,
    tol: float = 1e-12,
) -> tuple[np.ndarray, np.ndarray, bool]:
    """Weighted logistic regression of ``d`` on ``x`` by Newton-Raphson.

    Parameters
    ----------
    x
        ``n x k`` design; when its first column is constant the intercept starts at the logit of
        the weighted mean of ``d`` (exact in one step for an intercept-only model).
    d
        Binary outcome.
    w
        Non-negative observation weights.
    max_iter, tol
        Iteration limit and the convergence threshold on the largest coefficient change.

    Returns
    -------
    (beta, fitted probabilities, converged)
    """
    k = x.shape[1]
    beta = np.zeros(k)
    if k and np.all(x[:, 0] == 1.0):
        pbar = float(np.sum(w * d) / np.sum(w))
        pbar = min(max(pbar, 1e-10), 1 - 1e-10)
        beta[0] = math.log(pbar / (1.0 - pbar))
    converged = False
    for _ in range(max_iter):
        p = special.expit(x @ beta)
        grad = x.T @ (w * (d - p))
        hess = (x * (w * p * (1.0 - p))[:, None]).T @ x
        try:
            step = linalg.solve(hess, grad, assume_a="pos")
        except (linalg.LinAlgError, ValueError):
            break
        if not np.all(np.isfinite(step)):
            break
        beta = beta + step
        if np.max(np.abs(step)) <= tol * (1.0 + np.max(np.abs(beta))):
            converged = True
            break
    return beta, special.expit(x @ beta), converged


def group_sums(values: np.ndarray, codes: np.ndarray, n_groups: int) -> np.ndarray:
    """Sum the rows of ``values`` within groups coded ``0..n_groups-1``.

    ``values`` may be a vector (returns a vector) or an ``N x k`` matrix (returns ``n_groups x k``).
    """
    values = np.asarray(values, dtype=float)
    if values.ndim == 1:
        return np.bincount(codes, weights=values, minlength=n_groups)
    indicator = sparse.csr_matrix(
        (np.ones(len(codes)), (codes, np.arange(len(codes)))), shape=(n_groups, len(codes))
    )
    return np.asarray(indicator @ values)


def cluster_vcov(
    x: np.ndarray,
    resid: np.ndarray,
    codes: np.ndarray,
    n_clusters: int,
    bread: np.ndarray,
) -> np.ndarray:
    """Cluster-robust sandwich ``bread @ (sum_c s_c s_c') @ bread`` without small-sample factors."""
    scores = group_sums(x * resid[:, None], codes, n_clusters)
    return bread @ (scores.T @ scores) @ bread


def _draw_multipliers(
    rng: np.random.Generator, size: tuple[int, int], weight_type: str
) -> np.ndarray:
    if weight_type == "rademacher":
        return rng.integers(0, 2, size=size).astype(float) * 2.0 - 1.0
    low = rng.random(size, dtype=np.float32) < _MAMMEN_P_LOW
    return np.where(low, _MAMMEN_LOW, _MAMMEN_HIGH)


def _chunks(reps: int, n: int, max_elements: int = 4_000_000) -> Iterator[int]:
    step = max(1, min(reps, max_elements // max(n, 1)))
    done = 0
    while done < reps:
        size = min(step, reps - done)
        yield size
        done += size


def multiplier_bootstrap(
    scores: np.ndarray,
    *,
    reps: int,
    seed: int,
    weight_type: str = "mammen",
) -> np.ndarray:
    """Multiplier-bootstrap draws of ``sqrt(m) * mean_i(V_i * scores_i)``.

    Parameters
    ----------
    scores
        ``m x K`` influence functions (one row per unit, or per cluster when summed to clusters).
    reps
        Number of bootstrap draws.
    seed
        Seed of :func:`numpy.random.default_rng`; the same seed gives the same multipliers, so every
        quantity bootstrapped from one fit uses the same draws.
    weight_type
        ``mammen`` (as R ``did``) or ``rademacher``.

    Returns
    -------
    ``reps x K`` matrix of draws.
    """
    scores = np.atleast_2d(np.asarray(scores, dtype=float).T).T
    m = scores.shape[0]
    rng = np.random.default_rng(seed)
    out = np.empty((reps, scores.shape[1]))
    row = 0
    for size in _chunks(reps, m):
        v = _draw_multipliers(rng, (size, m), weight_type)
        out[row : row + size] = v @ scores
        row += size
    return out / math.sqrt(m)


def bootstrap_summary(
    draws: np.ndarray, *, level: float, n: int, n_clusters: int
) -> tuple[np.ndarray, float]:
    """Standard errors and sup-t critical value from multiplier-bootstrap draws (R ``did::mboot``).

    Standard errors are the interquartile range of the draws over that of the standard normal,
    scaled by ``sqrt(n_clusters) / n``; the critical value is the ``level`` quantile of the largest
    absolute studentised draw across columns. Degenerate columns get a NaN standard error.
    """
    draws = np.atleast_2d(np.asarray(draws, dtype=float).T).T
    k = draws.shape[1]
    se = np.full(k, np.nan)
    finite = np.all(np.isfinite(draws), axis=0)
    keep = finite & (np.sum(np.where(finite, draws, 0.0) ** 2, axis=0) > SE_FLOOR)
    if not np.any(keep):
        return se, math.nan
    b = draws[:, keep]
    q75 = np.quantile(b, 0.75, axis=0, method="inverted_cdf")
    q25 = np.quantile(b, 0.25, axis=0, method="inverted_cdf")
    sigma = (q75 - q25) / (stats.norm.ppf(0.75) - stats.norm.ppf(0.25))
    sigma = np.where(sigma <= SE_FLOOR, np.nan, sigma)
    with np.errstate(divide="ignore", invalid="ignore"):
        t_stats = np.abs(b / sigma)
    t_stats = np.where(np.isfinite(t_stats), t_stats, -np.inf)
    sup_t = np.max(t_stats, axis=1)
    sup_t = sup_t[np.isfinite(sup_t)]
    crit = float(np.quantile(sup_t, level, method="inverted_cdf")) if sup_t.size else math.nan
    se[keep] = sigma * math.sqrt(n_clusters) / n
    return se, crit


def normal_crit(level: float) -> float:
    """Two-sided standard-normal critical value for confidence ``level``."""
    return float(stats.norm.ppf(0.5 + level / 2.0))

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
from scipy import sparse, special
from scipy.linalg import lapack

EPS = float(np.finfo(float).eps)
#: Standard errors at or below this are treated as zero (as in R ``did``).
SE_FLOOR = math.sqrt(EPS) * 10.0

#: Matrices with at most this many columns are summed within groups column by column.
FEW_COLUMNS = 8

_SQRT5 = math.sqrt(5.0)
_MAMMEN_LOW = (1.0 - _SQRT5) / 2.0
_MAMMEN_HIGH = (1.0 + _SQRT5) / 2.0
_MAMMEN_P_LOW = (_SQRT5 + 1.0) / (2.0 * _SQRT5)
_NORMAL_IQR = float(special.ndtri(0.75) - special.ndtri(0.25))


def rcond(a: np.ndarray) -> float:
    """Reciprocal condition number of a square matrix in the 1-norm (0 when singular)."""
    a = np.atleast_2d(np.asarray(a, dtype=float))
    if a.size == 0 or not np.all(np.isfinite(a)):
        return 0.0
    if a.shape[-1] != a.shape[-2]:
        raise np.linalg.LinAlgError("rcond needs a square matrix")
    try:
        inverse = np.linalg.inv(a)
    except np.linalg.LinAlgError:
        return 0.0
    with np.errstate(all="ignore"):
        cond = np.abs(a).sum(axis=0).max() * np.abs(inverse).sum(axis=0).max()
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
        if not (np.isfinite(hess).all() and np.isfinite(grad).all()):
            break
        _, step, info = lapack.dposv(hess, grad)
        if info != 0 or not np.isfinite(step).all():
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
    if values.shape[1] <= FEW_COLUMNS:
        return _column_sums(values, codes, n_groups)
    indicator = sparse.csr_matrix(
        (np.ones(len(codes)), (codes, np.arange(len(codes)))), shape=(n_groups, len(codes))
    )
    return np.asarray(indicator @ values)


def _column_sums(values: np.ndarray, codes: np.ndarray, n_groups: int) -> np.ndarray:
    """Group sums of each column by :func:`numpy.bincount` (the same sums as the sparse product)."""
    out = np.empty((n_groups, values.shape[1]))
    for j in range(values.shape[1]):
        out[:, j] = np.bincount(codes, weights=values[:, j], minlength=n_groups)
    return out


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


def _order_index(n: int, q: float) -> int:
    """Position among ``n`` sorted values of their ``q`` quantile with ``method="inverted_cdf"``."""
    index = n * q - 1.0
    previous = math.floor(index)
    return min(max(previous if index == previous else previous + 1, 0), n - 1)


def bootstrap_scale(draws: np.ndarray) -> np.ndarray:
    """Interquartile-range scale of each column of multiplier-bootstrap draws (R ``did::mboot``).

    The interquartile range of a column over that of the standard normal. Columns with non-finite
    draws, with (almost) no variation, or with a scale at or below :data:`SE_FLOOR` get NaN.
    """
    draws = np.atleast_2d(np.asarray(draws, dtype=float).T).T
    sigma = np.full(draws.shape[1], np.nan)
    finite = np.all(np.isfinite(draws), axis=0)
    keep = finite & (np.sum(np.where(finite, draws, 0.0) ** 2, axis=0) > SE_FLOOR)
    if not np.any(keep):
        return sigma
    ordered = np.sort(draws[:, keep], axis=0)
    reps = ordered.shape[0]
    q25 = ordered[_order_index(reps, 0.25)]
    q75 = ordered[_order_index(reps, 0.75)]
    scale = (q75 - q25) / _NORMAL_IQR
    sigma[keep] = np.where(scale <= SE_FLOOR, np.nan, scale)
    return sigma


def sup_t_crit(draws: np.ndarray, sigma: np.ndarray, level: float) -> float:
    """Sup-t critical value: the ``level`` quantile of the largest absolute studentised draw.

    Only columns with a finite ``sigma`` (see :func:`bootstrap_scale`) enter; NaN when none does.
    """
    draws = np.atleast_2d(np.asarray(draws, dtype=float).T).T
    cols = np.flatnonzero(np.isfinite(sigma))
    if cols.size == 0:
        return math.nan
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        t_stats = np.abs(draws[:, cols] / sigma[cols])
    t_stats = np.where(np.isfinite(t_stats), t_stats, -np.inf)
    sup_t = np.max(t_stats, axis=1)
    sup_t = sup_t[np.isfinite(sup_t)]
    return float(np.quantile(sup_t, level, method="inverted_cdf")) if sup_t.size else math.nan


def bootstrap_summary(
    draws: np.ndarray, *, level: float, n: int, n_clusters: int
) -> tuple[np.ndarray, float]:
    """Standard errors and sup-t critical value from multiplier-bootstrap draws (R ``did::mboot``).

    Standard errors are the interquartile range of the draws over that of the standard normal,
    scaled by ``sqrt(n_clusters) / n``; the critical value is the ``level`` quantile of the largest
    absolute studentised draw across columns. Degenerate columns get a NaN standard error.
    """
    draws = np.atleast_2d(np.asarray(draws, dtype=float).T).T
    sigma = bootstrap_scale(draws)
    return sigma * math.sqrt(n_clusters) / n, sup_t_crit(draws, sigma, level)


def normal_crit(level: float) -> float:
    """Two-sided standard-normal critical value for confidence ``level``."""
    return float(special.ndtri(0.5 + level / 2.0))

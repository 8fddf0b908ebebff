"""Partialling out one or two sets of fixed effects (Frisch-Waugh-Lovell), optionally weighted.

Every residual here is that of a (weighted) least-squares regression on the fixed-effect dummies:

* one set of effects: within-group demeaning, ``x - mean_g(x)`` (weighted means with weights);
* two sets on a balanced panel without weights: the closed form ``x - mean_i - mean_t + mean``
  (on the rows of a panel sorted by unit then period, by reshaping to ``U x T``);
* two sets otherwise: exact, by concentrating out the effect with more levels (``a``) and solving
  the normal equations of the other (``b``) in closed form. With ``C`` the ``n_a x n_b`` table of
  weight totals per cell, the within-``a`` dummies of ``b`` have cross-product
  ``diag(C'1) - C' diag(1 / C1) C``, a small ``n_b x n_b`` matrix, so no dummy matrix is built;
* two sets that both have more than :data:`MAX_DUMMY_LEVELS` levels: alternating projections
  until the largest update is below ``tol`` times the scale of the data.

This reproduces the two-way demeaning of ``linearmodels.PanelOLS`` (which regresses the
within-transformed data on the within-transformed dummies of the smaller effect) to rounding.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse

from kinship_eval.did._linalg import FEW_COLUMNS, group_sums
from kinship_eval.errors import InputError

__all__ = [
    "MAX_DUMMY_LEVELS",
    "Grouping",
    "TwoWayDemeaner",
    "demean",
    "factorize",
    "within",
]

#: Largest number of levels of the smaller effect solved for exactly (dense normal equations).
MAX_DUMMY_LEVELS = 2000
#: Cells of the weight table above which it is held as a sparse matrix.
_DENSE_CELLS = 10_000_000
#: Relative eigenvalue cut-off of the pseudo-inverse (the constant is in the null space).
_PINV_RCOND = 1e-10


def factorize(codes: Any) -> tuple[np.ndarray, int]:
    """Integer codes ``0..n-1`` in sorted order of the labels, and the number of levels.

    Raises
    ------
    InputError
        When a label is missing.
    """
    values, _ = pd.factorize(np.asarray(codes), sort=True)
    if (values < 0).any():
        raise InputError("fixed-effect and cluster codes must not be missing")
    return values.astype(np.intp), int(values.max()) + 1 if len(values) else 0


class Grouping:
    """One set of fixed effects: its codes, the (weighted) size of each group and a summing
    operator built once, for repeated group sums and means.

    Parameters
    ----------
    codes
        Group codes ``0..n_groups-1``, one per row.
    n_groups
        Number of groups.
    weights
        Optional positive weights, one per row.
    """

    def __init__(self, codes: np.ndarray, n_groups: int, weights: np.ndarray | None = None) -> None:
        self.codes = np.asarray(codes, dtype=np.intp)
        self.n_groups = n_groups
        self.weights = weights
        self.totals = np.bincount(self.codes, weights=weights, minlength=n_groups).astype(float)
        self._indicator: sparse.csr_matrix | None = None

    def sums(self, values: np.ndarray) -> np.ndarray:
        """Unweighted sums within groups: a vector for a vector, ``n_groups x m`` for ``N x m``."""
        values = np.asarray(values, dtype=float)
        if values.ndim == 1 or values.shape[1] <= FEW_COLUMNS:
            return group_sums(values, self.codes, self.n_groups)
        if self._indicator is None:
            n = len(self.codes)
            self._indicator = sparse.csr_matrix(
                (np.ones(n), (self.codes, np.arange(n))), shape=(self.n_groups, n)
            )
        return np.asarray(self._indicator @ values)

    def means(self, values: np.ndarray) -> np.ndarray:
        """The (weighted) mean of its group for every row of a vector or an ``N x m`` matrix."""
        values = np.asarray(values, dtype=float)
        if self.weights is not None:
            w = self.weights if values.ndim == 1 else self.weights[:, None]
            sums = self.sums(values * w)
        else:
            sums = self.sums(values)
        means = sums / (self.totals if values.ndim == 1 else self.totals[:, None])
        return means[self.codes]

    def within(self, values: np.ndarray) -> np.ndarray:
        """``values`` less their (weighted) group means."""
        values = np.asarray(values, dtype=float)
        return values - self.means(values)


def within(
    values: np.ndarray,
    codes: np.ndarray,
    n_groups: int,
    weights: np.ndarray | None = None,
) -> np.ndarray:
    """``values`` (a vector or an ``N x m`` matrix) less their (weighted) group means."""
    return Grouping(codes, n_groups, weights).within(values)


def _sorted_grid(first: np.ndarray, second: np.ndarray, n_first: int, n_second: int) -> bool:
    """Whether the rows are every (first, second) cell once, sorted by first then second."""
    if len(first) != n_first * n_second:
        return False
    cells = first * n_second + second
    return bool(np.array_equal(cells, np.arange(len(cells))))


def _all_cells_once(first: np.ndarray, second: np.ndarray, n_first: int, n_second: int) -> bool:
    if len(first) != n_first * n_second:
        return False
    counts = np.bincount(first * n_second + second, minlength=n_first * n_second)
    return bool(np.all(counts == 1))


class TwoWayDemeaner:
    """Residuals on two sets of fixed effects for one panel layout (weighted least squares).

    The layout is analysed once; each call costs a few passes over the data.

    Parameters
    ----------
    first, second
        Codes ``0..n-1`` of the two effects (e.g. unit and period), one per row.
    n_first, n_second
        Number of levels of each.
    weights
        Optional positive weights, one per row; the residuals are those of the weighted regression
        (multiply them by ``sqrt(weights)`` for the transformed regression).
    tol, max_iter
        Convergence settings of the alternating projections, used only when both effects have more
        than :data:`MAX_DUMMY_LEVELS` levels.
    """

    def __init__(
        self,
        first: np.ndarray,
        second: np.ndarray,
        n_first: int,
        n_second: int,
        weights: np.ndarray | None = None,
        *,
        tol: float = 1e-13,
        max_iter: int = 10_000,
    ) -> None:
        w = None if weights is None else np.asarray(weights, dtype=float)
        self.first = Grouping(first, n_first, w)
        self.second = Grouping(second, n_second, w)
        self.weights = w
        self.tol = tol
        self.max_iter = max_iter
        self.method = self._choose_method()
        if self.method == "exact":
            self._setup_exact()

    def _choose_method(self) -> str:
        a, b = self.first, self.second
        if self.weights is None:
            if _sorted_grid(a.codes, b.codes, a.n_groups, b.n_groups):
                return "grid"
            if _all_cells_once(a.codes, b.codes, a.n_groups, b.n_groups):
                return "balanced"
        if min(a.n_groups, b.n_groups) <= MAX_DUMMY_LEVELS:
            return "exact"
        return "iterate"

    def _setup_exact(self) -> None:
        """Concentrate out the effect with more levels; invert the dummies' cross-product."""
        if self.first.n_groups >= self.second.n_groups:
            self._means, self._dummies = self.first, self.second
        else:
            self._means, self._dummies = self.second, self.first
        a, na = self._means.codes, self._means.n_groups
        b, nb = self._dummies.codes, self._dummies.n_groups
        w = np.ones(len(a)) if self.weights is None else self.weights
        if na * nb <= _DENSE_CELLS:
            table = np.bincount(a * nb + b, weights=w, minlength=na * nb).reshape(na, nb)
            cross = table.T @ (table / self._means.totals[:, None])
        else:
            table_s = sparse.csr_matrix((w, (a, b)), shape=(na, nb))
            cross = (table_s.T @ sparse.diags(1.0 / self._means.totals) @ table_s).toarray()
        gram = np.diag(self._dummies.totals) - cross
        self._gram_pinv = np.linalg.pinv(gram, rcond=_PINV_RCOND, hermitian=True)

    def __call__(self, values: np.ndarray) -> np.ndarray:
        """Residuals of a vector or of every column of an ``N x m`` matrix."""
        arr = np.asarray(values, dtype=float)
        mat = arr.reshape(len(arr), -1)
        if len(mat) != len(self.first.codes):
            raise InputError("fixed-effect codes must have one entry per observation")
        if self.method == "grid":
            out = self._grid(mat)
        elif self.method == "balanced":
            out = mat - self.first.means(mat) - self.second.means(mat) + mat.mean(axis=0)
        elif self.method == "exact":
            out = self._exact(mat)
        else:
            out = self._iterate(mat)
        return out.reshape(arr.shape)

    def _grid(self, mat: np.ndarray) -> np.ndarray:
        cube = mat.reshape(self.first.n_groups, self.second.n_groups, -1)
        out = (
            cube
            - cube.mean(axis=1, keepdims=True)
            - cube.mean(axis=0, keepdims=True)
            + cube.mean(axis=(0, 1), keepdims=True)
        )
        return out.reshape(mat.shape)

    def _exact(self, mat: np.ndarray) -> np.ndarray:
        resid = self._means.within(mat)
        weighted = resid if self.weights is None else resid * self.weights[:, None]
        coef = self._gram_pinv @ self._dummies.sums(weighted)
        return resid - self._means.within(coef[self._dummies.codes])

    def _iterate(self, mat: np.ndarray) -> np.ndarray:
        out = mat.copy()
        scale = max(float(np.abs(mat).max()) if mat.size else 0.0, 1.0)
        for _ in range(self.max_iter):
            step_first = self.first.means(out)
            out = out - step_first
            step_second = self.second.means(out)
            out = out - step_second
            largest = max(float(np.abs(step_first).max()), float(np.abs(step_second).max()))
            if largest <= self.tol * scale:
                break
        return out


def demean(
    values: np.ndarray,
    *fixed_effects: Any,
    weights: np.ndarray | None = None,
    tol: float = 1e-13,
    max_iter: int = 10_000,
) -> np.ndarray:
    """Residuals of ``values`` on one or two sets of fixed effects (Frisch-Waugh-Lovell).

    Parameters
    ----------
    values
        A vector of length ``N`` or an ``N x m`` matrix (each column is residualised).
    *fixed_effects
        Zero, one or two arrays of length ``N`` with the fixed-effect codes (e.g. unit and period).
    weights
        Optional positive weights: residuals of the weighted regression.
    tol, max_iter
        Convergence settings of the alternating projections, used only for two very large
        fixed-effect dimensions.

    Returns
    -------
    numpy.ndarray
        Same shape as ``values``.

    Notes
    -----
    One set of effects: within-group demeaning. Two sets on a balanced panel: the closed form
    ``x - mean_i - mean_t + mean``. Two sets on an unbalanced (or weighted) panel: exact, by
    concentrating out the effect with more levels and solving the normal equations of the other
    (at most :data:`MAX_DUMMY_LEVELS` levels); otherwise alternating projections to ``tol``.
    """
    arr = np.asarray(values, dtype=float)
    if len(fixed_effects) == 0:
        return arr.copy()
    if len(fixed_effects) > 2:
        raise InputError("at most two sets of fixed effects can be partialled out")
    mat = arr.reshape(len(arr), -1)
    coded = [factorize(fe) for fe in fixed_effects]
    for codes, _ in coded:
        if len(codes) != len(mat):
            raise InputError("fixed-effect codes must have one entry per observation")
    w = None if weights is None else np.asarray(weights, dtype=float)
    if len(coded) == 1:
        return within(mat, *coded[0], w).reshape(arr.shape)
    (a, na), (b, nb) = coded
    demeaner = TwoWayDemeaner(a, b, na, nb, w, tol=tol, max_iter=max_iter)
    return demeaner(mat).reshape(arr.shape)

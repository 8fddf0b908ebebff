"""Synthetic difference-in-differences and synthetic control.

Implements the estimators of Arkhangelsky, Athey, Hirshberg, Imbens and Wager (2021), "Synthetic
Difference-in-Differences", *American Economic Review* 111(12), following the algorithm of their
reference R package ``synthdid`` step for step:

* **Collapsed form.** For a block design with ``N0`` control units, ``N1`` treated units, ``T0``
  pre-periods and ``T1`` post-periods, the outcome matrix is collapsed to
  ``(N0 + 1) x (T0 + 1)`` by averaging the treated rows and the post-period columns.
* **Unit weights** ``omega`` solve
  ``min ||A omega - b||^2 / T0 + zeta_omega^2 ||omega||^2`` over the unit simplex, where the columns
  of ``A`` are the control units' pre-period paths and ``b`` is the treated mean path, both demeaned
  over the pre-period (the intercept). The ridge level is
  ``zeta_omega = (N1 * T1) ** (1/4) * sigma``, with ``sigma`` the standard deviation of the first
  differences of the control outcomes over the pre-period (the *noise level*).
* **Time weights** ``lambda`` solve the analogous problem with the roles of units and periods
  swapped (pre-period columns regressed on the post-period mean, demeaned across control units),
  with an infinitesimal ridge ``zeta_lambda = 1e-6 * sigma``.
* **Solver.** Frank-Wolfe with exact line search, stopped when an iteration decreases the penalised
  objective by less than ``min_decrease ** 2`` (``min_decrease = 1e-5 * sigma``) or after
  ``max_iter = 10_000`` iterations. As in ``synthdid``, a first round of at most 100 iterations is
  followed by a sparsification step (weights at most a quarter of the largest weight are set to zero
  and the rest renormalised) and a second round started from the sparsified weights.
* **Estimate.** ``tau = (-omega, 1/N1)' Y (-lambda, 1/T1)``.

Synthetic control (``method="sc"``) uses the same solver for the unit weights without an intercept
and with ridge ``zeta_omega = 1e-6 * sigma``, and no time weights (``lambda = 0``).
Difference-in-differences (``method="did"``) uses uniform unit and time weights.

Standard errors follow ``synthdid``'s ``placebo_se`` (Algorithm 4 of the paper), ``jackknife_se``
(Algorithm 3, fixed weights) and ``bootstrap_se`` (Algorithm 2). Replications keep the
regularisation levels and stopping rule of the original fit and start the solver from the original
weights, as the reference implementation does; the Frank-Wolfe iterations of all replications are
run together as batched array operations.

Staggered adoption is handled cohort by cohort: for each first-treated period ``g`` the block design
of cohort ``g`` against the never-treated units over all periods of the panel (pre-periods
``t < g``, post-periods ``t >= g``) is estimated. Each cohort's estimate is already that cohort's
mean post-treatment effect, so by default (``cohort_weighting="units"``) the overall effect weights
the cohorts by their size, ``w_g = N1_g / sum_g N1_g``: the cohort aggregation of R ``did``'s
``aggte(type = "group")``, as for the other cohort-based estimators of the package. With
``cohort_weighting="units_x_periods"`` the weights are proportional to ``N1_g * T1_g``, the number
of treated unit-periods of the cohort (every treated unit-period counts equally). Either way the
standard error of the average combines the cohort standard errors as if the cohort estimates were
independent, ``se = sqrt(sum_g w_g^2 se_g^2)``; the cohorts share their control units, so this is
an approximation. Units first treated after the last period count as never treated; cohorts treated
from the first period (or, for ``sdid`` and ``sc``, with fewer than two pre-periods) are dropped
with a note.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from kinship_eval.did.data import DiDData, prepare
from kinship_eval.did.results import GROUP_TIME_COLUMNS, DiDResults
from kinship_eval.errors import EstimationError, InferenceWarning, InputError

__all__ = ["SyntheticResults", "synthetic_control", "synthetic_did"]

Method = Literal["sdid", "sc", "did"]
Variance = Literal["placebo", "jackknife", "bootstrap"]
CohortWeighting = Literal["units", "units_x_periods"]

MAX_ITER = 10_000
MAX_ITER_PRE_SPARSIFY = 100
#: Rough bound on the number of array elements (outcomes and Gram matrices) per batch.
_BATCH_ELEMENTS = 10_000_000


# --------------------------------------------------------------------------------------- options
@dataclass(frozen=True)
class _Options:
    """Regularisation and solver settings of one fit (kept fixed across replications)."""

    method: str
    zeta_omega: float
    zeta_lambda: float
    omega_intercept: bool
    lambda_intercept: bool
    update_omega: bool
    update_lambda: bool
    min_decrease: float
    noise_level: float
    max_iter: int = MAX_ITER


def _noise_level(y: np.ndarray, n0: int, t0: int) -> float:
    """Standard deviation (``ddof=1``) of the first differences of control outcomes, pre-period."""
    diffs = np.diff(y[:n0, :t0], axis=1)
    if diffs.size < 2:
        return math.nan
    return float(np.std(diffs, ddof=1))


def _options(method: str, y: np.ndarray, n0: int, t0: int) -> _Options:
    n1 = y.shape[0] - n0
    t1 = y.shape[1] - t0
    noise = _noise_level(y, n0, t0)
    if method == "sdid":
        return _Options(
            method=method,
            zeta_omega=(n1 * t1) ** 0.25 * noise,
            zeta_lambda=1e-6 * noise,
            omega_intercept=True,
            lambda_intercept=True,
            update_omega=True,
            update_lambda=True,
            min_decrease=1e-5 * noise,
            noise_level=noise,
        )
    if method == "sc":
        return _Options(
            method=method,
            zeta_omega=1e-6 * noise,
            zeta_lambda=1e-6 * noise,
            omega_intercept=False,
            lambda_intercept=True,
            update_omega=True,
            update_lambda=False,
            min_decrease=1e-5 * noise,
            noise_level=noise,
        )
    return _Options(
        method=method,
        zeta_omega=math.nan,
        zeta_lambda=math.nan,
        omega_intercept=False,
        lambda_intercept=False,
        update_omega=False,
        update_lambda=False,
        min_decrease=math.nan,
        noise_level=noise,
    )


# --------------------------------------------------------------------------------- the solver
def _sparsify(x: np.ndarray) -> np.ndarray:
    """``synthdid``'s ``sparsify_function``, row by row: drop weights <= max/4 and renormalise."""
    out = np.where(x <= x.max(axis=1, keepdims=True) / 4, 0.0, x)
    return out / out.sum(axis=1, keepdims=True)


def _fw(
    a: np.ndarray,
    b: np.ndarray,
    x0: np.ndarray,
    zeta: float,
    min_decrease: float,
    max_iter: int,
    *,
    n_rows: np.ndarray | None = None,
    allowed: np.ndarray | None = None,
) -> np.ndarray:
    """Frank-Wolfe with exact line search for a batch of simplex-constrained ridge problems.

    Solves, for every replication ``r``,
    ``min_x zeta^2 ||x||^2 + ||A_r x - b_r||^2 / m_r`` over the unit simplex, exactly as
    ``synthdid``'s ``sc.weight.fw``: the same step (the vertex with the smallest gradient entry,
    the first one on ties, and an exact line search clipped to ``[0, 1]``, for the problem scaled by
    ``m_r`` so that the ridge is ``eta = m_r zeta^2``), the same objective values and the same
    stopping rule (stop after ``max_iter`` iterations, or once an iteration from the second on
    decreases the objective by no more than ``min_decrease^2``).

    Parameters
    ----------
    a
        ``(R, m, k)`` design matrices (already demeaned when there is an intercept). Rows that are
        padding must be zero in ``a`` and ``b``.
    b
        ``(R, m)`` targets.
    x0
        ``(R, k)`` starting weights on the simplex (zero outside ``allowed``).
    zeta, min_decrease, max_iter
        Ridge level, stopping tolerance and iteration cap.
    n_rows
        ``(R,)`` number of real (non-padding) rows ``m_r``; all ``m`` rows by default.
    allowed
        ``(R, k)`` mask of the columns that may receive weight (zero columns of ``a`` elsewhere);
        all by default.

    Returns
    -------
    ``(R, k)`` weights.

    Notes
    -----
    Both solvers work on the quadratic form: with ``H = A'A + eta I`` and ``c = A'b`` the scaled
    objective is ``F(x) = x'Hx - 2c'x + b'b`` and the half gradient ``g = Hx - c``. A step to
    vertex ``i`` of length ``s`` updates ``g`` by ``s (H_i - c - g)`` (one row of a table), and
    the scalars the line search needs (``g'x`` and ``c'x``) follow in closed form, as does the
    decrease of the objective, ``s (2 g'(x - e_i) - s d'Hd)`` with ``d = e_i - x``. The iterate
    itself is rebuilt from the recorded steps, and the gradient recomputed from it, every
    ``_REFRESH`` steps.
    """
    if max_iter <= 0 or a.shape[0] == 0:
        return np.array(x0, dtype=float, copy=True)
    n_rep, m, _ = a.shape
    m_r = np.full(n_rep, float(m)) if n_rows is None else np.asarray(n_rows, dtype=float)
    table = _fw_table(a, b, zeta, m_r, min_decrease**2, allowed)
    x = np.array(x0, dtype=float, copy=True)
    if n_rep == 1:
        return _fw_single(table, x, max_iter)
    return _fw_batch(table, x, max_iter)


#: Frank-Wolfe steps between two exact recomputations of the iterates and their gradients.
_REFRESH = 200
#: A batch checks after every one of its first ``_CHECK_FIRST`` steps whether some replication is
#: still running, and then every ``_CHECK_EVERY`` steps.
_CHECK_FIRST = 16
_CHECK_EVERY = 32


@dataclass
class _FWTable:
    """Quadratic forms of a batch of Frank-Wolfe problems (see :func:`_fw`).

    Attributes
    ----------
    rows
        ``(R, k, k)``: ``rows[r, i] = H_i - c + P``, the gradient at vertex ``e_i``; ``P`` is zero
        on the allowed columns and larger than any gradient entry elsewhere.
    diag
        ``(R, k)``: ``H_ii - 2 c_i``.
    c
        ``(R, k)``: ``A'b``.
    tol
        ``(R,)``: stopping tolerance on the decrease of ``F`` (``m_r min_decrease^2``).
    """

    rows: np.ndarray
    diag: np.ndarray
    c: np.ndarray
    tol: np.ndarray


def _fw_table(
    a: np.ndarray,
    b: np.ndarray,
    zeta: float,
    m_r: np.ndarray,
    tol: float,
    allowed: np.ndarray | None,
) -> _FWTable:
    """The :class:`_FWTable` of problems ``a``, ``b`` (ridge ``eta = m_r zeta^2``; ``tol`` is the
    tolerance on the decrease of the objective ``F / m_r``)."""
    at = a.transpose(0, 2, 1)
    gram = np.matmul(at, a)
    k = gram.shape[1]
    diag = np.einsum("rkk->rk", gram) + (m_r * zeta**2)[:, None]
    c = np.ascontiguousarray(np.matmul(at, b[:, :, None])[:, :, 0])
    rows = gram - c[:, None, :]
    rows[:, np.arange(k), np.arange(k)] = diag - c
    if allowed is not None:
        big = 1.0 + 2.0 * float(np.abs(rows).max())
        rows += np.where(allowed, 0.0, big)[:, None, :]
    return _FWTable(rows, np.ascontiguousarray(diag - 2.0 * c), c, m_r * tol)


def _fw_gradient(
    table: _FWTable, x: np.ndarray, idx: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Half gradients ``g`` (penalised), ``g'x`` and ``c'x`` at weights ``x``.

    ``x`` holds the weights of the problems ``idx`` of the table (all of them by default).
    """
    if idx is None:
        g = np.matmul(x[:, None, :], table.rows)[:, 0, :]
        c = table.c
    else:
        x_all = np.zeros(table.c.shape)
        x_all[idx] = x
        g = np.matmul(x_all[:, None, :], table.rows)[idx, 0, :]
        c = table.c[idx]
    return g, np.einsum("rk,rk->r", g, x), np.einsum("rk,rk->r", c, x)


def _fw_replay(x: np.ndarray, steps: np.ndarray, picks: np.ndarray) -> np.ndarray:
    """``x`` after the moves ``x <- (1 - s) x + s e_i`` recorded in ``(n, R)`` steps and picks."""
    if steps.shape[0] == 0:
        return x
    n_rep, k = x.shape
    kept = np.cumprod((1.0 - steps)[::-1], axis=0)[::-1]
    after = np.ones_like(kept)
    after[:-1] = kept[1:]
    cells = picks + np.arange(n_rep) * k
    moved = np.bincount(cells.ravel(), (steps * after).ravel(), minlength=n_rep * k)
    return x * kept[0][:, None] + moved.reshape(n_rep, k)


def _fw_single(table: _FWTable, x: np.ndarray, max_iter: int) -> np.ndarray:
    """:func:`_fw` for one problem, with the scalars of the line search as Python floats.

    The arithmetic is that of :meth:`_FWBatch.advance`, operation for operation.
    """
    rows = list(table.rows[0])
    diag = table.diag[0].tolist()
    c = table.c[0].tolist()
    tol = float(table.tol[0])
    g, p, cx = _fw_gradient_one(table, x)
    buf = np.empty_like(g)
    steps: list[float] = []
    picks: list[int] = []
    subtract = np.subtract
    for t in range(1, max_iter + 1):
        i = int(g.argmin())
        u = g.item(i)
        gdx = p - u
        den = gdx + cx + diag[i] - u
        if den > 0.0 and gdx >= 0.0:
            s = gdx / den
            if s > 1.0:
                s = 1.0
        else:
            s = _clipped_ratio(gdx, den)
        decrease = s * (gdx - s * den + gdx)
        e_c = (c[i] - cx) * s
        p += e_c - decrease
        cx += e_c
        steps.append(s)
        picks.append(i)
        subtract(rows[i], g, out=buf)
        buf *= s
        g += buf
        if (t >= 2 and not decrease > tol) or t == max_iter:
            break
        if len(steps) == _REFRESH:
            x = _fw_replay(x, np.array(steps)[:, None], np.array(picks)[:, None])
            steps.clear()
            picks.clear()
            g, p, cx = _fw_gradient_one(table, x)
    return _fw_replay(x, np.array(steps)[:, None], np.array(picks, dtype=np.intp)[:, None])


def _fw_gradient_one(table: _FWTable, x: np.ndarray) -> tuple[np.ndarray, float, float]:
    """:func:`_fw_gradient` of a single problem, with ``g'x`` and ``c'x`` as Python floats."""
    g, p, cx = _fw_gradient(table, x)
    return g[0], float(p[0]), float(cx[0])


def _clipped_ratio(num: float, den: float) -> float:
    """``fmax(fmin(num / den, 1), 0)`` in IEEE arithmetic (so ``0 / 0`` gives 1)."""
    if den != 0.0:
        ratio = num / den
    elif num == 0.0 or math.isnan(num):
        ratio = math.nan
    else:
        ratio = math.copysign(math.inf, num) * math.copysign(1.0, den)
    if math.isnan(ratio) or ratio >= 1.0:
        return 1.0
    return ratio if ratio > 0.0 else 0.0


def _fw_batch(table: _FWTable, x: np.ndarray, max_iter: int) -> np.ndarray:
    """:func:`_fw` for many problems at once (see :class:`_FWBatch`)."""
    out = np.empty_like(x)
    state = _FWBatch(table, x)
    t = 0
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        while t < max_iter:
            count = 1 if t < _CHECK_FIRST else _CHECK_EVERY - t % _CHECK_EVERY
            count = min(count, max_iter - t, _REFRESH - state.n)
            state.advance(count)
            if t == 0:
                state.decrease[0] = math.inf
            t += count
            if t == max_iter:
                break
            if (t < _CHECK_FIRST or t % _CHECK_EVERY == 0) and state.all_stopped():
                break
            if state.n == _REFRESH:
                state.refresh(out)
        state.finish(out)
    return out


class _FWBatch:
    """Running state of a batch of Frank-Wolfe problems.

    One step of every running replication costs a few vectorised operations on ``(R, k)`` and
    ``(R,)`` arrays, written into preallocated buffers. The steps, the chosen vertices and the
    decreases of the objective are recorded, and the stopping rule is applied to the record: every
    ``_CHECK_EVERY`` steps to find out whether every replication has stopped, and at each refresh
    (every ``_REFRESH`` steps), where the steps a replication took after it stopped are undone, the
    iterates are rebuilt, the replications that stopped are set aside and the gradients of the
    others are recomputed.
    """

    def __init__(self, table: _FWTable, x: np.ndarray) -> None:
        n_rep, k = x.shape
        self.table = table
        self.table_rows = table.rows.reshape(-1, k)
        self.table_cd = np.stack([table.c.ravel(), table.diag.ravel()])
        self.x = x
        self.idx = np.arange(n_rep)
        self.tol = table.tol
        self._allocate()

    def _allocate(self) -> None:
        """Buffers for the running replications ``idx``."""
        n_rep, k = self.x.shape
        self.steps = np.empty((_REFRESH, n_rep))
        self.picks = np.empty((_REFRESH, n_rep), dtype=np.intp)
        self.decrease = np.empty((_REFRESH, n_rep))
        self.history = list(zip(self.picks, self.steps, self.decrease, strict=True))
        self.offsets = np.arange(0, n_rep * k, k)
        self.table_offsets = self.idx * k
        self.cells = np.empty(n_rep, dtype=np.intp)
        self.table_cells = np.empty(n_rep, dtype=np.intp)
        self.u, self.gdx, self.den, self.y1 = np.empty((4, n_rep))
        self.pair = np.empty((2, n_rep))
        self.ci, self.di = self.pair
        self.update = np.empty((2, n_rep))
        self.e_p, self.e_c = self.update
        self.rows = np.empty((n_rep, k))
        self._restart()

    def _restart(self) -> None:
        """Empty the record and recompute the gradients from the iterates."""
        self.n = 0
        self.scanned = 0
        self.stopped = np.zeros(self.idx.size, dtype=bool)
        self.g, p, cx = _fw_gradient(self.table, self.x, self.idx)
        self.pc = np.stack([p, cx])
        self.p, self.cx = self.pc

    def advance(self, count: int) -> None:
        """``count`` Frank-Wolfe steps of every running replication."""
        g, p, cx, pc, update = self.g, self.p, self.cx, self.pc, self.update
        u, gdx, den, y1, ci, di = self.u, self.gdx, self.den, self.y1, self.ci, self.di
        e_p, e_c, pair, rows = self.e_p, self.e_c, self.pair, self.rows
        offsets, cells = self.offsets, self.cells
        table_offsets, table_cells = self.table_offsets, self.table_cells
        table_rows, table_cd = self.table_rows, self.table_cd
        for i, s, decrease in self.history[self.n : self.n + count]:
            g.argmin(axis=1, out=i)
            g.take(np.add(i, offsets, out=cells), out=u, mode="clip")
            fi = np.add(i, table_offsets, out=table_cells)
            table_cd.take(fi, axis=1, out=pair, mode="clip")
            np.subtract(p, u, out=gdx)
            np.add(gdx, cx, out=den)
            den += di
            den -= u
            np.divide(gdx, den, out=s)
            np.fmin(s, 1.0, out=s)
            np.fmax(s, 0.0, out=s)
            np.multiply(s, den, out=y1)
            np.subtract(gdx, y1, out=y1)
            y1 += gdx
            np.multiply(s, y1, out=decrease)
            np.subtract(ci, cx, out=e_c)
            e_c *= s
            np.subtract(e_c, decrease, out=e_p)
            pc += update
            table_rows.take(fi, axis=0, out=rows, mode="clip")
            rows -= g
            rows *= s[:, None]
            g += rows
        self.n += count

    def all_stopped(self) -> bool:
        """Whether every replication has met the stopping rule."""
        fresh = self.decrease[self.scanned : self.n] > self.tol
        self.stopped |= ~fresh.all(axis=0)
        self.scanned = self.n
        return bool(self.stopped.all())

    def _rebuild(self) -> np.ndarray:
        """Undo the steps taken after stopping and rebuild the iterates; returns the stopped."""
        n = self.n
        late = ~(self.decrease[:n] > self.tol)
        stopped = late.any(axis=0)
        if stopped.any():
            first = np.where(stopped, late.argmax(axis=0), n)
            self.steps[:n] *= np.arange(n)[:, None] <= first
        self.x = _fw_replay(self.x, self.steps[:n], self.picks[:n])
        return stopped

    def refresh(self, out: np.ndarray) -> None:
        """Rebuild the iterates, set the stopped replications aside (into ``out``) and recompute
        the gradients of the others."""
        stopped = self._rebuild()
        if not stopped.any():
            self._restart()
            return
        out[self.idx[stopped]] = self.x[stopped]
        keep = ~stopped
        self.idx, self.x, self.tol = self.idx[keep], self.x[keep], self.tol[keep]
        self._allocate()

    def finish(self, out: np.ndarray) -> None:
        """Write the final iterates of the remaining replications into ``out``."""
        self._rebuild()
        out[self.idx] = self.x


def _sc_weights(
    y: np.ndarray,
    x0: np.ndarray,
    zeta: float,
    intercept: bool,
    min_decrease: float,
    max_iter: int,
    *,
    row_mask: np.ndarray | None = None,
    col_mask: np.ndarray | None = None,
) -> np.ndarray:
    """Two-round (sparsified) weight estimation of ``synthdid_estimate`` for a batch.

    ``y`` is ``(R, m, k + 1)``: the first ``k`` columns are the regressors, the last the target.
    ``row_mask`` (``(R, m)``) marks the real rows when some are padding; ``col_mask`` (``(R, k)``)
    the regressors that may receive weight.
    """
    n_rows = None
    if row_mask is not None:
        n_rows = row_mask.sum(axis=1)
        y = y * row_mask[:, :, None]
        if intercept:
            mean = y.sum(axis=1, keepdims=True) / n_rows[:, None, None]
            y = (y - mean) * row_mask[:, :, None]
    elif intercept:
        y = y - y.mean(axis=1, keepdims=True)
    if col_mask is not None:
        y = y.copy()
        y[:, :, :-1] *= col_mask[:, None, :]
    a = np.ascontiguousarray(y[:, :, :-1])
    b = np.ascontiguousarray(y[:, :, -1])
    kw = {"n_rows": n_rows, "allowed": col_mask}
    x = _fw(a, b, x0, zeta, min_decrease, min(MAX_ITER_PRE_SPARSIFY, max_iter), **kw)
    return _fw(a, b, _sparsify(x), zeta, min_decrease, max_iter, **kw)


def _sum_normalize(x: np.ndarray) -> np.ndarray:
    """Rows rescaled to sum to one; rows summing to zero become uniform (``sum_normalize``)."""
    s = x.sum(axis=-1, keepdims=True)
    uniform = np.full_like(x, 1.0 / x.shape[-1])
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(s != 0, x / s, uniform)


def _fit_batch(
    y: np.ndarray,
    n0: int,
    t0: int,
    opts: _Options,
    omega0: np.ndarray,
    lambda0: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``synthdid_estimate`` on a batch of ``(R, N, T)`` outcome arrays with the same shape.

    Rows ``:n0`` are controls, columns ``:t0`` pre-periods. ``omega0`` and ``lambda0`` are the
    starting weights (used as they are when the options say not to update them).

    Returns
    -------
    (estimates ``(R,)``, omega ``(R, n0)``, lambda ``(R, t0)``)
    """
    omega, lam = omega0, lambda0
    pre = y[:, :, :t0]
    post_mean = y[:, :, t0:].mean(axis=2)
    if opts.update_lambda:
        yc = np.concatenate([pre[:, :n0, :], post_mean[:, :n0, None]], axis=2)
        lam = _sc_weights(
            yc, lambda0, opts.zeta_lambda, opts.lambda_intercept, opts.min_decrease, opts.max_iter
        )
    if opts.update_omega:
        treated_pre = pre[:, n0:, :].mean(axis=1)
        yc = np.concatenate([pre[:, :n0, :], treated_pre[:, None, :]], axis=1).transpose(0, 2, 1)
        omega = _sc_weights(
            yc, omega0, opts.zeta_omega, opts.omega_intercept, opts.min_decrease, opts.max_iter
        )
    contrast = post_mean - np.matmul(pre, lam[:, :, None])[:, :, 0]
    est = contrast[:, n0:].mean(axis=1) - np.einsum("rn,rn->r", omega, contrast[:, :n0])
    return est, omega, lam


def _fit_batch_masked(
    y: np.ndarray,
    control: np.ndarray,
    t0: int,
    opts: _Options,
    omega0: np.ndarray,
    lambda0: np.ndarray,
) -> np.ndarray:
    """:func:`_fit_batch` when the control/treated split differs across replications.

    ``y`` is ``(R, N, T)``; ``control`` (``(R, N)``) marks each replication's control rows and
    ``omega0`` (``(R, N)``) is zero on the other rows. Returns the estimates.
    """
    omega, lam = omega0, lambda0
    treated = ~control
    pre = y[:, :, :t0]
    post_mean = y[:, :, t0:].mean(axis=2)
    if opts.update_lambda:
        yc = np.concatenate([pre, post_mean[:, :, None]], axis=2)
        lam = _sc_weights(
            yc,
            lambda0,
            opts.zeta_lambda,
            opts.lambda_intercept,
            opts.min_decrease,
            opts.max_iter,
            row_mask=control,
        )
    if opts.update_omega:
        treated_pre = np.einsum("rn,rnt->rt", treated, pre) / treated.sum(axis=1)[:, None]
        yc = np.concatenate([pre, treated_pre[:, None, :]], axis=1).transpose(0, 2, 1)
        omega = _sc_weights(
            yc,
            omega0,
            opts.zeta_omega,
            opts.omega_intercept,
            opts.min_decrease,
            opts.max_iter,
            col_mask=control,
        )
    contrast = post_mean - np.matmul(pre, lam[:, :, None])[:, :, 0]
    tr_mean = np.einsum("rn,rn->r", treated, contrast) / treated.sum(axis=1)
    return tr_mean - np.einsum("rn,rn->r", omega * control, contrast)


def _batches(n_rep: int, per_rep: int) -> list[slice]:
    size = max(1, _BATCH_ELEMENTS // max(per_rep, 1))
    return [slice(s, min(s + size, n_rep)) for s in range(0, n_rep, size)]


# ------------------------------------------------------------------------------- block estimate
@dataclass
class _BlockFit:
    """One block design (one adoption cohort against the never-treated units) and its fit."""

    cohort: int
    y: np.ndarray
    n0: int
    t0: int
    control_units: np.ndarray
    treated_units: np.ndarray
    periods: np.ndarray
    opts: _Options
    estimate: float = math.nan
    omega: np.ndarray = field(default_factory=lambda: np.empty(0))
    lam: np.ndarray = field(default_factory=lambda: np.empty(0))
    se: float = math.nan
    n_reps: int = 0

    @property
    def n1(self) -> int:
        return self.y.shape[0] - self.n0

    @property
    def t1(self) -> int:
        return self.y.shape[1] - self.t0


def _fit_block(block: _BlockFit) -> None:
    n0, t0 = block.n0, block.t0
    omega0 = np.full((1, n0), 1.0 / n0)
    lambda0 = np.zeros((1, t0)) if block.opts.method == "sc" else np.full((1, t0), 1.0 / t0)
    est, omega, lam = _fit_batch(block.y[None], n0, t0, block.opts, omega0, lambda0)
    block.estimate = float(est[0])
    block.omega = omega[0]
    block.lam = lam[0]


def _placebo_se(block: _BlockFit, reps: int, rng: np.random.Generator) -> float:
    """``synthdid`` ``placebo_se``: controls reassigned at random as placebo treated units."""
    n0, n1, t0 = block.n0, block.n1, block.t0
    if n0 <= n1:
        raise EstimationError(
            f"cohort {block.cohort}: the placebo standard error needs more control units "
            f"({n0}) than treated units ({n1})"
        )
    perms = np.argsort(rng.random((reps, n0)), axis=1)
    y_co = block.y[:n0]
    new_n0 = n0 - n1
    ests = np.empty(reps)
    for sl in _batches(reps, y_co.size + n0 * n0 + t0 * t0):
        p = perms[sl]
        y = y_co[p]
        omega0 = _sum_normalize(block.omega[p[:, :new_n0]])
        lambda0 = np.broadcast_to(block.lam, (p.shape[0], t0)).copy()
        ests[sl] = _fit_batch(y, new_n0, t0, block.opts, omega0, lambda0)[0]
    block.n_reps = reps
    return float(np.std(ests, ddof=0))


def _bootstrap_se(block: _BlockFit, reps: int, rng: np.random.Generator) -> float:
    """``synthdid`` ``bootstrap_se``: units resampled with replacement, draws lacking a control or
    a treated unit discarded and redrawn."""
    n, n0, t0 = block.y.shape[0], block.n0, block.t0
    draws: list[np.ndarray] = []
    while len(draws) < reps:
        ind = np.sort(rng.integers(0, n, size=(reps, n)), axis=1)
        n_co = (ind < n0).sum(axis=1)
        draws.extend(ind[(n_co > 0) & (n_co < n)])
    ind = np.asarray(draws[:reps])
    ests = np.empty(reps)
    omega_full = np.concatenate([block.omega, np.zeros(n - n0)])
    for sl in _batches(reps, block.y.size + n * n + t0 * t0):
        d = ind[sl]
        control = d < n0
        raw = np.where(control, omega_full[d], 0.0)
        total = raw.sum(axis=1, keepdims=True)
        uniform = control / control.sum(axis=1, keepdims=True)
        omega0 = np.where(total > 0, raw / np.where(total > 0, total, 1.0), uniform)
        lambda0 = np.broadcast_to(block.lam, (d.shape[0], t0)).copy()
        ests[sl] = _fit_batch_masked(block.y[d], control, t0, block.opts, omega0, lambda0)
    block.n_reps = reps
    return float(np.std(ests, ddof=0))


def _jackknife_se(block: _BlockFit) -> float:
    """``synthdid`` ``jackknife_se`` with fixed weights (omega renormalised, lambda unchanged)."""
    n0, n1, t1 = block.n0, block.n1, block.t1
    if np.count_nonzero(block.omega) == 1:
        warnings.warn(
            f"cohort {block.cohort}: the jackknife standard error is undefined when a single "
            "control unit carries all the weight",
            InferenceWarning,
            stacklevel=3,
        )
        return math.nan
    contrast = block.y @ np.concatenate([-block.lam, np.full(t1, 1.0 / t1)])
    c_co, c_tr = contrast[:n0], contrast[n0:]
    synth = block.omega @ c_co
    tr_mean = c_tr.mean()
    with np.errstate(divide="ignore", invalid="ignore"):
        drop_control = tr_mean - (synth - block.omega * c_co) / (1.0 - block.omega)
    drop_treated = (c_tr.sum() - c_tr) / (n1 - 1) - synth
    u = np.concatenate([drop_control, drop_treated])
    n = u.size
    return float(math.sqrt((n - 1) / n * (n - 1) * np.var(u, ddof=1)))


# --------------------------------------------------------------------------------- the results
@dataclass
class SyntheticResults(DiDResults):
    """Results of :func:`synthetic_did` / :func:`synthetic_control`.

    Adds to :class:`~kinship_eval.did.results.DiDResults`:

    Attributes
    ----------
    unit_weights
        Control-unit weights ``omega``. Indexed by unit for a single adoption cohort; with several
        cohorts the index is ``(cohort, unit)``. Each cohort's weights sum to one.
    time_weights
        Pre-period weights ``lambda``, indexed by period (or ``(cohort, period)``). Zero for
        synthetic control; uniform for difference-in-differences.
    trajectories
        One row per cohort and period: ``cohort``, ``time``, ``post``, ``treated`` (mean outcome of
        the cohort's treated units), ``synthetic`` (the ``omega``-weighted control mean) and
        ``counterfactual`` (``synthetic`` shifted by the ``lambda``-weighted pre-period gap between
        treated and synthetic, which is the comparison the estimate makes: the effect is the average
        over post-periods of ``treated - counterfactual``).
    cohorts
        One row per adoption cohort: ``cohort``, ``att``, ``se``, ``n_treated``, ``n_control``,
        ``n_pre``, ``n_post``, ``weight`` (its share in the overall ``att``).
    """

    unit_weights: pd.Series | None = None
    time_weights: pd.Series | None = None
    trajectories: pd.DataFrame | None = None
    cohorts: pd.DataFrame | None = None

    def plot(self, ax: Any = None, *, cohort: int | None = None, top: int = 15) -> Any:
        """Treated and synthetic trajectories with the time weights, and the largest unit weights.

        Parameters
        ----------
        ax
            Optional pair of matplotlib axes (trajectories, unit weights); a new figure otherwise.
        cohort
            Adoption cohort to show; defaults to the cohort with the largest weight.
        top
            Number of control units to show in the unit-weight panel.

        Returns
        -------
        The matplotlib figure.
        """
        import matplotlib.pyplot as plt

        if self.trajectories is None or self.cohorts is None:
            raise EstimationError("no trajectories to plot")
        if cohort is None:
            cohort = int(self.cohorts.sort_values("weight", ascending=False)["cohort"].iloc[0])
        traj = self.trajectories[self.trajectories["cohort"] == cohort]
        if traj.empty:
            raise InputError(f"no adoption cohort {cohort} in the results")
        if ax is None:
            fig, (ax_traj, ax_w) = plt.subplots(
                2, 1, figsize=(8, 8), gridspec_kw={"height_ratios": [3, 2]}
            )
        else:
            ax_traj, ax_w = ax
            fig = ax_traj.figure
        omega = _cohort_slice(self.unit_weights, cohort, len(self.cohorts))
        lam = _cohort_slice(self.time_weights, cohort, len(self.cohorts))
        ax_traj.plot(traj["time"], traj["treated"], color="black", label="treated")
        ax_traj.plot(traj["time"], traj["synthetic"], color="tab:blue", label="synthetic control")
        if self.estimator != "sc":
            post = traj[traj["post"]]
            ax_traj.plot(
                post["time"],
                post["counterfactual"],
                color="tab:blue",
                linestyle="--",
                label="counterfactual",
            )
        ax_traj.axvline(cohort - 0.5, color="grey", linestyle=":")
        if lam is not None and float(lam.abs().sum()) > 0:
            low, high = ax_traj.get_ylim()
            height = 0.25 * (high - low)
            ax_traj.bar(
                lam.index.to_numpy(dtype=float),
                lam.to_numpy() * height,
                bottom=low,
                color="tab:orange",
                alpha=0.6,
                width=0.8,
                label="time weights",
            )
            ax_traj.set_ylim(low, high)
        effect = float(self.cohorts.loc[self.cohorts["cohort"] == cohort, "att"].iloc[0])
        ax_traj.set_title(f"{self.estimator}: cohort {cohort}, effect {effect:.3g}")
        ax_traj.set_ylabel(self.outcome)
        ax_traj.legend(loc="best", fontsize="small")
        if omega is not None:
            shown = omega[omega > 0].sort_values(ascending=False).head(top)[::-1]
            ax_w.barh([str(u) for u in shown.index], shown.to_numpy(), color="tab:blue")
            ax_w.set_xlabel("unit weight")
            ax_w.set_title(f"Largest control-unit weights (top {len(shown)})")
        fig.tight_layout()
        return fig


def _cohort_slice(series: pd.Series | None, cohort: int, n_cohorts: int) -> pd.Series | None:
    if series is None:
        return None
    if n_cohorts == 1 and not isinstance(series.index, pd.MultiIndex):
        return series
    return series.xs(cohort, level=0)


def _plain(value: Any) -> Any:
    """A JSON-ready Python scalar (numpy scalars unwrapped, NaN as None)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


_WEIGHTING = {
    "units": "their number of treated units",
    "units_x_periods": "treated units x post-periods",
}

_LABELS = {
    "sdid": "synthetic difference-in-differences",
    "sc": "synthetic control",
    "did": "difference-in-differences with uniform weights",
}


# ------------------------------------------------------------------------------ the estimators
def synthetic_did(
    data: pd.DataFrame,
    *,
    unit: str,
    time: str,
    outcome: str,
    first_treated: str,
    method: Method = "sdid",
    variance: Variance = "placebo",
    reps: int = 200,
    seed: int | None = None,
    level: float = 0.95,
    cohort_weighting: CohortWeighting = "units",
) -> SyntheticResults:
    """Synthetic difference-in-differences (or synthetic control, or DiD) on a balanced panel.

    Parameters
    ----------
    data
        Long panel, one row per unit and period; must be balanced with no missing outcomes.
    unit, time, outcome, first_treated
        Column names. ``first_treated`` is the first treated period, 0 or missing for never treated.
        Units first treated after the last period are used as controls.
    method
        ``"sdid"`` (synthetic difference-in-differences), ``"sc"`` (synthetic control as in
        ``synthdid::sc_estimate``) or ``"did"`` (difference-in-differences with uniform weights).
    variance
        ``"placebo"`` (controls reassigned as placebo treated units; the only option with a
        single treated unit), ``"jackknife"`` (fixed-weight unit jackknife; needs more than one
        treated unit per cohort) or ``"bootstrap"`` (unit bootstrap re-estimating the weights;
        needs more than one treated unit per cohort).
    reps
        Replications for the placebo and bootstrap standard errors.
    seed
        Seed of the ``numpy.random.default_rng`` used for the placebo and bootstrap draws.
    level
        Confidence level of the normal-approximation interval.
    cohort_weighting
        How the overall ``att`` averages the cohort effects under staggered adoption: ``"units"``
        (default) weights each cohort by its number of treated units (R ``did``'s
        ``aggte(type = "group")``); ``"units_x_periods"`` by its treated units x post-periods.
        Irrelevant with a single adoption cohort.

    Returns
    -------
    SyntheticResults
        ``att`` is the average effect on the treated. With several adoption cohorts each cohort is
        estimated as its own block design against the never-treated units, giving that cohort's
        mean post-treatment effect, and the cohorts are averaged with the ``cohort_weighting``
        weights (``cohorts["weight"]``); see the module documentation.

    Raises
    ------
    InputError
        When the panel is unbalanced or an option is invalid.
    EstimationError
        When no cohort has enough pre-periods, or the requested variance cannot be computed.
    """
    if method not in ("sdid", "sc", "did"):
        raise InputError(f"method must be 'sdid', 'sc' or 'did', not {method!r}")
    if variance not in ("placebo", "jackknife", "bootstrap"):
        raise InputError(
            f"variance must be 'placebo', 'jackknife' or 'bootstrap', not {variance!r}"
        )
    if variance in ("placebo", "bootstrap") and reps < 2:
        raise InputError(f"reps must be at least 2, not {reps}")
    if not 0 < level < 1:
        raise InputError(f"level must be between 0 and 1, not {level}")
    if cohort_weighting not in ("units", "units_x_periods"):
        raise InputError(
            f"cohort_weighting must be 'units' or 'units_x_periods', not {cohort_weighting!r}"
        )

    dd = prepare(data, unit=unit, time=time, outcome=outcome, first_treated=first_treated)
    notes: list[str] = []
    blocks = _blocks(dd, method, notes)

    if variance in ("jackknife", "bootstrap"):
        single = [b.cohort for b in blocks if b.n1 < 2]
        if single:
            raise EstimationError(
                f"the {variance} standard error needs more than one treated unit per adoption "
                f"cohort (cohort {single[0]} has one); use variance='placebo'"
            )
    rng = np.random.default_rng(seed)
    for block in blocks:
        _fit_block(block)
        if variance == "placebo":
            block.se = _placebo_se(block, reps, rng)
        elif variance == "bootstrap":
            block.se = _bootstrap_se(block, reps, rng)
        else:
            block.se = _jackknife_se(block)

    if cohort_weighting == "units":
        sizes = np.array([b.n1 for b in blocks], dtype=float)
    else:
        sizes = np.array([b.n1 * b.t1 for b in blocks], dtype=float)
    w = sizes / sizes.sum()
    att = float(np.dot(w, [b.estimate for b in blocks]))
    se = float(math.sqrt(np.dot(w**2, [b.se**2 for b in blocks])))

    multi = len(blocks) > 1
    cohorts = pd.DataFrame(
        {
            "cohort": [b.cohort for b in blocks],
            "att": [b.estimate for b in blocks],
            "se": [b.se for b in blocks],
            "n_treated": [b.n1 for b in blocks],
            "n_control": [b.n0 for b in blocks],
            "n_pre": [b.t0 for b in blocks],
            "n_post": [b.t1 for b in blocks],
            "weight": w,
        }
    )
    unit_weights = _weights_series(blocks, multi, "omega", dd.unit_col, dd.group_col)
    time_weights = _weights_series(blocks, multi, "lambda", dd.time_col, dd.group_col)
    trajectories = pd.concat([_trajectory(b) for b in blocks], ignore_index=True)
    post = trajectories[trajectories["post"]]
    group_time = pd.DataFrame(
        {
            "group": post["cohort"].to_numpy(),
            "time": post["time"].to_numpy(),
            "att": (post["treated"] - post["counterfactual"]).to_numpy(),
            "se": math.nan,
        }
    )[GROUP_TIME_COLUMNS]

    notes[:0] = [_LABELS[method] + " following the synthdid algorithm (Arkhangelsky et al. 2021)"]
    if multi:
        notes.append(
            f"staggered adoption: {len(blocks)} cohorts, each estimated against the never-treated "
            "units over all periods; the overall effect weights cohorts by "
            f"{_WEIGHTING[cohort_weighting]}, and its standard error treats the cohort estimates "
            "as independent (an approximation: the cohorts share their control units)"
        )
    if variance == "placebo":
        notes.append(
            f"placebo standard error ({reps} replications): control units reassigned as treated"
        )
    elif variance == "bootstrap":
        notes.append(f"bootstrap standard error ({reps} replications, units resampled)")
    else:
        notes.append("jackknife standard error with fixed weights (leave one unit out)")
        if method == "sc":
            notes.append(
                "the jackknife is not recommended for synthetic control (Arkhangelsky et al. "
                "2021, section 5)"
            )
    n_treated = int(sum(b.n1 for b in blocks))
    if n_treated == 1:
        notes.append("a single treated unit: inference rests on the placebo distribution alone")

    used = {u for b in blocks for u in (*b.control_units.tolist(), *b.treated_units.tolist())}
    extra: dict[str, Any] = {
        "cohorts": [{k: _plain(v) for k, v in row.items()} for row in cohorts.to_dict("records")],
        "noise_level": {str(b.cohort): _plain(b.opts.noise_level) for b in blocks},
        "unit_weights": _weight_records(unit_weights, "unit"),
        "time_weights": _weight_records(time_weights, "time"),
    }
    return SyntheticResults(
        estimator=method,
        outcome=dd.outcome,
        att=att,
        se=se,
        n_units=len(used),
        n_treated_units=n_treated,
        n_periods=dd.n_periods,
        inference=variance,
        level=level,
        group_time=group_time,
        settings={
            "method": method,
            "variance": variance,
            "reps": reps if variance != "jackknife" else None,
            "seed": seed,
            "level": level,
            "unit": unit,
            "time": time,
            "first_treated": first_treated,
            "cohort_weighting": cohort_weighting,
        },
        notes=notes,
        extra=extra,
        unit_weights=unit_weights,
        time_weights=time_weights,
        trajectories=trajectories,
        cohorts=cohorts,
    )


def synthetic_control(
    data: pd.DataFrame,
    *,
    unit: str,
    time: str,
    outcome: str,
    first_treated: str,
    variance: Variance = "placebo",
    reps: int = 200,
    seed: int | None = None,
    level: float = 0.95,
    cohort_weighting: CohortWeighting = "units",
) -> SyntheticResults:
    """Synthetic control: :func:`synthetic_did` with ``method="sc"``.

    Unit weights without an intercept and an infinitesimal ridge (``1e-6`` times the noise level),
    no time weights, as ``synthdid::sc_estimate``.
    """
    return synthetic_did(
        data,
        unit=unit,
        time=time,
        outcome=outcome,
        first_treated=first_treated,
        method="sc",
        variance=variance,
        reps=reps,
        seed=seed,
        level=level,
        cohort_weighting=cohort_weighting,
    )


# ------------------------------------------------------------------------------- block designs
def _blocks(dd: DiDData, method: str, notes: list[str]) -> list[_BlockFit]:
    if not dd.is_balanced:
        raise InputError(
            "synthetic difference-in-differences needs a balanced panel (every unit observed in "
            f"every period): {len(dd.frame)} rows for {dd.n_units} units x {dd.n_periods} periods",
            column=dd.unit_col,
        )
    wide = dd.wide("y")
    periods = wide.columns.to_numpy()
    g = dd.frame.groupby("unit")["g"].first().reindex(wide.index).to_numpy()
    last = periods.max()
    late = (g > last).sum()
    if late:
        notes.append(f"{late} unit(s) first treated after the last period are used as controls")
    control = (g == 0) | (g > last)
    if not control.any():
        raise EstimationError("no never-treated units to build a synthetic control from")
    y_all = wide.to_numpy(dtype=float)
    min_pre = 1 if method == "did" else 2
    blocks: list[_BlockFit] = []
    for cohort in np.sort(np.unique(g[(g > 0) & (g <= last)])):
        t0 = int((periods < cohort).sum())
        if t0 < min_pre:
            notes.append(f"cohort {cohort} dropped: {t0} pre-period(s), at least {min_pre} needed")
            continue
        treated = g == cohort
        y = np.vstack([y_all[control], y_all[treated]])
        n0 = int(control.sum())
        opts = _options(method, y, n0, t0)
        if method != "did" and not (np.isfinite(opts.noise_level) and opts.noise_level > 0):
            raise EstimationError(
                f"cohort {cohort}: the control outcomes do not vary over the pre-period, so the "
                "noise level (and the regularisation) is undefined"
            )
        blocks.append(
            _BlockFit(
                cohort=int(cohort),
                y=y,
                n0=n0,
                t0=t0,
                control_units=wide.index.to_numpy()[control],
                treated_units=wide.index.to_numpy()[treated],
                periods=periods,
                opts=opts,
            )
        )
    if not blocks:
        raise EstimationError("no adoption cohort has enough pre-treatment periods")
    return blocks


def _weights_series(
    blocks: list[_BlockFit], multi: bool, which: str, label: str, group_col: str
) -> pd.Series:
    parts = []
    for b in blocks:
        keys = b.control_units if which == "omega" else b.periods[: b.t0]
        values = b.omega if which == "omega" else b.lam
        if multi:
            index = pd.MultiIndex.from_arrays(
                [np.full(len(keys), b.cohort), keys], names=[group_col, label]
            )
        else:
            index = pd.Index(keys, name=label)
        parts.append(pd.Series(values, index=index, name=which))
    return pd.concat(parts) if multi else parts[0]


def _weight_records(series: pd.Series, key: str) -> list[dict[str, Any]]:
    """Non-zero weights as JSON-ready records (``cohort`` is added with several cohorts)."""
    out = []
    for idx, value in series.items():
        if value == 0:
            continue
        if isinstance(idx, tuple):
            rec = {"cohort": _plain(idx[0]), key: _plain(idx[1])}
        else:
            rec = {key: _plain(idx)}
        rec["weight"] = float(value)
        out.append(rec)
    return out


def _trajectory(b: _BlockFit) -> pd.DataFrame:
    treated = b.y[b.n0 :].mean(axis=0)
    synthetic = b.omega @ b.y[: b.n0]
    gap = float(b.lam @ (treated[: b.t0] - synthetic[: b.t0]))
    return pd.DataFrame(
        {
            "cohort": b.cohort,
            "time": b.periods,
            "post": np.arange(len(b.periods)) >= b.t0,
            "treated": treated,
            "synthetic": synthetic,
            "counterfactual": synthetic + gap,
        }
    )

"""Thousands of TWFE difference-in-differences fits on one panel, for power simulations.

A power simulation refits the same two-way fixed-effects regression for many placebo treatment
assignments and many effect sizes. Everything the fit needs is linear in the outcome, so the
outcome is demeaned (unit and period effects partialled out, Frisch-Waugh-Lovell) once, and for a
treatment indicator ``d`` and an injected effect ``delta * e`` (``e = d`` for an additive effect,
``e = baseline * d`` for a proportional one) the estimate, the cluster-robust score and every wild
bootstrap statistic are affine (or quadratic) in ``delta``:

* estimate ``beta(delta) = (d~'y~ + delta d~'e~) / d~'d~`` with ``x~`` the demeaned ``x``;
* cluster scores ``g(delta) = g0 + delta g1``;
* under the null ``beta = 0`` the restricted residuals are ``y~ + delta e~``, so the wild
  bootstrap numerators and score matrices of Roodman et al. (2019) split into an outcome part and
  an effect part, and each bootstrap t-statistic at any ``delta`` follows from five sums per draw.

The results equal, to rounding, :func:`kinship_eval.did.twfe.twfe` with clustered errors
(linearmodels' convention: variance scaled by ``N / (N - U - T)``, p-values from ``t`` with
``N - U - T`` degrees of freedom) and :func:`kinship_eval.did.inference.wild_bootstrap_did`
(restricted wild cluster bootstrap, clusters = units) with the same bootstrap draws.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

from kinship_eval.did._demean import Grouping, TwoWayDemeaner
from kinship_eval.errors import InputError

_SQRT5 = math.sqrt(5.0)
_WEBB = np.array([-math.sqrt(1.5), -1.0, -math.sqrt(0.5), math.sqrt(0.5), 1.0, math.sqrt(1.5)])
_MAMMEN_LOW = (1.0 - _SQRT5) / 2.0
_MAMMEN_HIGH = (1.0 + _SQRT5) / 2.0
_MAMMEN_P_LOW = (_SQRT5 + 1.0) / (2.0 * _SQRT5)
WEIGHT_TYPES = ("webb", "rademacher", "mammen")


def draw_weights(rng: np.random.Generator, kind: str, n_clusters: int, reps: int) -> np.ndarray:
    """``n_clusters x reps`` wild bootstrap weights, drawn exactly as
    :func:`kinship_eval.did.inference.wild_cluster_bootstrap` draws them (so that a seed gives
    the same draws)."""
    if kind == "webb":
        return _WEBB[rng.integers(0, 6, size=(n_clusters, reps))]
    if kind == "rademacher":
        return rng.integers(0, 2, size=(n_clusters, reps)).astype(float) * 2.0 - 1.0
    if kind == "mammen":
        low = rng.random((n_clusters, reps)) < _MAMMEN_P_LOW
        return np.where(low, _MAMMEN_LOW, _MAMMEN_HIGH)
    raise InputError(f"bootstrap weights must be one of {', '.join(WEIGHT_TYPES)}, not {kind!r}")


@dataclass
class FastFit:
    """TWFE results of one treatment assignment at each effect size ``deltas``."""

    deltas: np.ndarray
    estimate: np.ndarray
    se_cluster: np.ndarray
    p_cluster: np.ndarray
    p_wild: np.ndarray | None = None
    se_wild: np.ndarray | None = None


class TwoWayProjector:
    """The projection ``M`` off unit and period effects, precomputed for one panel layout.

    ``M x`` is computed by :class:`kinship_eval.did._demean.TwoWayDemeaner` (the demeaning every
    TWFE fit uses: exact on balanced and unbalanced panels). The wild bootstrap also needs ``M``
    written as ``M x = x_w - D_w (D_w' D_w)^+ D_w' x_w``, with ``x_w`` the within-unit demeaned
    ``x`` and ``D_w`` the within-unit demeaned period dummies: ``d_w`` is ``D_w`` and ``p`` is
    ``(D_w' D_w)^+ D_w'``.
    """

    def __init__(self, units: np.ndarray, times: np.ndarray, n_units: int, n_periods: int) -> None:
        self.units = units
        self.n_units = n_units
        self.groups = Grouping(units, n_units)
        self._demean = TwoWayDemeaner(units, times, n_units, n_periods)
        n = len(units)
        dummies = np.zeros((n, n_periods))
        dummies[np.arange(n), times] = 1.0
        # the first period is the reference (the dummies sum to the unit effects)
        self.d_w = self.groups.within(dummies[:, 1:])
        self.p = np.linalg.pinv(self.d_w.T @ self.d_w, rcond=1e-10, hermitian=True) @ self.d_w.T

    def group_sum(self, values: np.ndarray) -> np.ndarray:
        """Sums within units of a vector or of the rows of an ``N x m`` matrix."""
        return self.groups.sums(values)

    def __call__(self, values: np.ndarray) -> np.ndarray:
        return self._demean(values)


class FastTwfe:
    """TWFE regressions of one outcome on many treatment indicators (clusters = units).

    Parameters
    ----------
    unit_codes, time_codes
        Integer codes ``0..U-1`` and ``0..T-1`` of each observation (sorted unit labels give the
        cluster order of :func:`~kinship_eval.did.inference.wild_cluster_bootstrap`).
    y
        Outcome, one value per observation (complete).

    Notes
    -----
    The wild bootstrap score matrix of cluster ``g`` against cluster ``h`` is
    ``T_gh = sum_{i in g} w_i [M (u 1[h])]_i - a_g s_h`` (Roodman et al. 2019, with
    ``w = M d / d'M d``). Writing ``M`` through the within-demeaned period dummies gives
    ``T = diag(s) - A Pi - a s'`` with ``A`` (``U x (T-1)``) and ``Pi`` (``(T-1) x U``), so
    ``T v`` for a block of draws costs ``O(U T B)`` rather than ``O(U^2 B)`` and no ``N x U``
    matrix is formed.
    """

    def __init__(self, unit_codes: np.ndarray, time_codes: np.ndarray, y: np.ndarray) -> None:
        self.units = np.asarray(unit_codes, dtype=np.intp)
        self.times = np.asarray(time_codes, dtype=np.intp)
        self.n_obs = len(self.units)
        self.n_units = int(self.units.max()) + 1
        self.n_periods = int(self.times.max()) + 1
        n, u, t = self.n_obs, self.n_units, self.n_periods
        self.project = TwoWayProjector(self.units, self.times, u, t)
        self.y_t = self.project(np.asarray(y, dtype=float))
        self.df_cluster = n - u - t
        if self.df_cluster <= 0:
            raise InputError("too few observations for unit and period effects")
        self.scale_cluster = n / self.df_cluster
        self.ssc_wild = u / (u - 1) * (n - 1) / (n - t - 1)
        self.pi_y = self._pi(self.y_t)

    def _pi(self, u: np.ndarray) -> np.ndarray:
        """``Pi[:, h] = P (u 1[cluster h])`` (``(T-1) x U``)."""
        return self.project.group_sum(self.project.p.T * u[:, None]).T

    def fit(
        self,
        d: np.ndarray,
        deltas: np.ndarray,
        *,
        effect: np.ndarray | None = None,
        draws: np.ndarray | None = None,
    ) -> FastFit | None:
        """Estimates and p-values of ``H0: beta = 0`` on ``y + delta * effect``.

        Parameters
        ----------
        d
            Treatment indicator, one value per observation.
        deltas
            Effect sizes.
        effect
            The effect pattern ``e``; ``None`` is additive (``e = d``).
        draws
            ``U x B`` wild bootstrap weights, or ``None`` for cluster-robust inference only.

        Returns
        -------
        FastFit, or ``None`` when the indicator is absorbed by the fixed effects.
        """
        proj = self.project
        deltas = np.asarray(deltas, dtype=float)
        d_t = proj(np.asarray(d, dtype=float))
        s = float(d_t @ d_t)
        if s <= 1e-10 * max(1.0, float(np.abs(d).sum())):
            return None
        e_t = d_t if effect is None else proj(np.asarray(effect, dtype=float))
        b_y = float(d_t @ self.y_t) / s
        kappa = float(d_t @ e_t) / s
        a = proj.group_sum(d_t * d_t) / s
        s_y = proj.group_sum(d_t * self.y_t) / s
        s_e = proj.group_sum(d_t * e_t) / s
        g0 = s_y - b_y * a
        g1 = s_e - kappa * a
        estimate = b_y + deltas * kappa
        v = g0 @ g0 + 2.0 * deltas * (g0 @ g1) + deltas**2 * (g1 @ g1)
        v = np.maximum(v, 0.0)
        se_cluster = np.sqrt(self.scale_cluster * v)
        with np.errstate(divide="ignore", invalid="ignore"):
            t_cluster = estimate / se_cluster
        p_cluster = 2.0 * stats.t.sf(np.abs(t_cluster), self.df_cluster)
        out = FastFit(deltas, estimate, se_cluster, p_cluster)
        if draws is None:
            return out
        # y~ and e~ are already projected, so their unit means are zero and the diagonal part of
        # the score matrix equals the numerator vector s
        w = d_t / s
        a_mat = proj.group_sum(w[:, None] * proj.d_w)
        pi_e = self._pi(e_t)
        pis = np.vstack([self.pi_y, pi_e])
        k = self.pi_y.shape[0]
        n_boot = draws.shape[1]
        n_y, n_e = s_y @ draws, s_e @ draws
        q_yy, q_ye, q_ee = np.empty(n_boot), np.empty(n_boot), np.empty(n_boot)
        # blocks of draws keep the temporaries small; the products go through einsum because
        # multithreaded BLAS is slower than a single loop on matrices this thin
        width = max(1, 16_384 // max(self.n_units, 1))
        for start in range(0, n_boot, width):
            sl = slice(start, start + width)
            v_b = draws[:, sl]
            pi_v = np.einsum("ij,jk->ik", pis, v_b)
            z_y = (
                s_y[:, None] * v_b - np.einsum("ij,jk->ik", a_mat, pi_v[:k]) - a[:, None] * n_y[sl]
            )
            z_e = (
                s_e[:, None] * v_b - np.einsum("ij,jk->ik", a_mat, pi_v[k:]) - a[:, None] * n_e[sl]
            )
            q_yy[sl] = np.einsum("ij,ij->j", z_y, z_y)
            q_ye[sl] = np.einsum("ij,ij->j", z_y, z_e)
            q_ee[sl] = np.einsum("ij,ij->j", z_e, z_e)
        ssc = self.ssc_wild
        se_wild = np.sqrt(ssc * v)
        with np.errstate(divide="ignore", invalid="ignore"):
            t_obs = np.abs(estimate / se_wild)
        p_wild = np.full(len(deltas), math.nan)
        ok = np.flatnonzero(np.isfinite(se_wild) & (se_wild > 0))
        step = max(1, 16_384 // max(draws.shape[1], 1))  # blocks of ~128 kB: no mmap churn
        for start in range(0, len(ok), step):
            idx = ok[start : start + step]
            dl = deltas[idx][:, None]
            num = n_y[None, :] + dl * n_e[None, :]
            den2 = ssc * np.maximum(q_yy[None, :] + 2.0 * dl * q_ye[None, :] + dl**2 * q_ee, 0.0)
            with np.errstate(divide="ignore", invalid="ignore"):
                t_boot = np.abs(num / np.sqrt(den2))
            t_boot = np.where(np.isfinite(t_boot), t_boot, np.where(num != 0, np.inf, 0.0))
            tol = 1e-10 * np.maximum(1.0, t_obs[idx])
            p_wild[idx] = np.mean(t_boot >= (t_obs[idx] - tol)[:, None], axis=1)
        out.p_wild = p_wild
        out.se_wild = se_wild
        return out

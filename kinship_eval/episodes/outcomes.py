"""Child-level outcomes: one row per period of care that starts in the data.

A *period of care* is a run of a child's episodes joined end to start with ``REC`` = ``X1``. A
new period starts at the child's first episode, at an episode with ``RNE`` = ``S``, after an
episode with any other reason for ending (or an unknown one), after a gap, and after an episode
closed as lost to follow-up. A period whose first episode has ``RNE`` = ``S`` and starts on or
after 1 April of the LA's first return year is an *observed entry* (``observed_entry``); the
others began before the returns (left-truncated: only those still looked after are seen) and are
left out by default.

Outcomes of each entry
----------------------
``exit_date``, ``rec``, ``exit_group``
    When and why the period ended, if that was seen by the end of follow-up.
``follow_up_end``
    The end of the LA's last return year (31 March), or ``as_of`` if earlier; for a child lost
    to follow-up (``open_lost``), the day the record stops.
``censored``
    No exit seen: still looked after at the end of follow-up, or lost to follow-up.
``days_in_care``
    Days from entry to the exit, or to the end of follow-up when censored.
``placement_moves``
    New placements after the first (episodes with ``RNE`` ``P``, ``T``, ``B`` or ``U``) seen
    during follow-up.
``left_to_kin_<W>m``
    1 if the child left care to kin (``E41``, ``E45``, ``E47`` by default) within ``W`` months
    of entry, 0 if the child left for another reason within ``W`` months or was still looked
    after ``W`` months after entry, missing when follow-up ended earlier without an exit
    (``censored_<W>m`` True). ``W`` months are ``round(W * 365 / 12)`` days (12 -> 365).
``window_complete_<W>m``
    The ``W`` months after entry end by the LA's end of follow-up (so the outcome does not
    depend on how early the child left); cohorts for analysis should require it.
``days_in_care_<W>m``
    Days looked after within the first ``W`` months (restricted mean outcome); missing when
    censored before ``W`` months.
``placement_moves_<W>m``
    New placements within the first ``W`` months (counted when the window is complete).

Characteristics at entry: ``age_at_entry`` (years), ``sex``, ``ethnic`` and ``ethnic_group``
(from the header, latest return), ``cin``, ``ls`` and ``ls_group``, ``place`` and
``placement_group`` of the first episode, ``prior_care`` (an earlier period of care of the same
child in the data; earlier history before the first return is unseen), ``entry_number``,
``entry_year`` (year ending 31 March) and ``entry_quarter``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from kinship_eval.episodes import _arrays as A
from kinship_eval.episodes.codes import (
    CONTINUES_REC,
    KIN_EXIT_REC,
    PLACEMENT_CHANGE_RNE,
    SHORT_BREAK_LS,
    CodeLists,
    read_code_lists,
)
from kinship_eval.episodes.ssda903 import FIX_FLAGS, EpisodeData
from kinship_eval.errors import InputError


def window_days(months: int) -> int:
    """Days in a follow-up window of ``months`` months (12 -> 365, 24 -> 730)."""
    return round(months * 365 / 12)


def child_outcomes(
    data: EpisodeData,
    *,
    windows: Sequence[int] = (12, 24),
    kin_codes: Sequence[str] = KIN_EXIT_REC,
    as_of: str | pd.Timestamp | None = None,
    entries_only: bool = True,
    exclude_short_breaks: bool = True,
    codes: CodeLists | None = None,
) -> pd.DataFrame:
    """One row per period of care with its characteristics at entry and its outcomes.

    Parameters
    ----------
    data
        Episodes from :func:`~kinship_eval.episodes.read_ssda903` (with the header, for age,
        sex and ethnicity).
    windows
        Follow-up windows in months for the ``*_<W>m`` outcomes.
    kin_codes
        ``REC`` codes counted as leaving care to kin.
    as_of
        End follow-up at this date (ISO) if earlier than the LA's last return.
    entries_only
        Keep only observed entries (``RNE`` = ``S``, on or after the start of the LA's returns).
    exclude_short_breaks
        Leave out episodes with legal status ``V3``/``V4`` first.
    codes
        Code lists (the bundled SSDA903 lists by default).

    Returns
    -------
    DataFrame
        See the module docstring; ``synthetic`` is True in every row for synthetic data.
    """
    codes = codes or read_code_lists()
    ep = data.episodes
    if exclude_short_breaks and "ls" in ep:
        ep = ep.loc[~ep["ls"].isin(SHORT_BREAK_LS).to_numpy()]
    needed = [c for c in ("rne", "rec", "place") if c not in ep]
    if needed:
        raise InputError(f"child outcomes need the episode column {needed[0].upper()}")
    key = ep["child_key"].to_numpy()
    decom = A.from_datetime64(ep["decom"].to_numpy()).astype(np.int64)
    dec = A.from_datetime64(ep["dec"].to_numpy()).astype(np.int64)
    rne_cats = list(ep["rne"].cat.categories)
    rne_codes = ep["rne"].cat.codes.to_numpy()
    is_s = rne_codes == rne_cats.index("S")
    rec_codes = ep["rec"].cat.codes.to_numpy()
    rec_cats = list(ep["rec"].cat.categories)
    x1 = rec_cats.index(CONTINUES_REC)
    lost_flag = ep["fix"].cat.codes.to_numpy() == FIX_FLAGS.index("open_lost")
    n = len(ep)

    same_prev = np.zeros(n, dtype=bool)
    same_prev[1:] = key[1:] == key[:-1]
    prev_cont = np.zeros(n, dtype=bool)
    prev_cont[1:] = (rec_codes[:-1] == x1) & (dec[:-1] == decom[1:]) & ~lost_flag[:-1]
    new_period = ~same_prev | is_s | ~prev_cont
    first = np.flatnonzero(new_period)
    period = np.cumsum(new_period) - 1
    last = np.empty_like(first)
    last[:-1] = first[1:] - 1
    if len(first):
        last[-1] = n - 1
    child_first = A.group_starts(key[first])
    entry_number = np.arange(len(first)) - np.maximum.accumulate(
        np.where(child_first, np.arange(len(first)), 0)
    )

    start = decom[first]
    end = dec[last]
    is_open = end == A.NO_DATE
    lost = lost_flag[last]
    la_codes = ep["la_code"].astype(str).to_numpy()[first]
    la_end = dict(
        zip(
            data.coverage["la_code"],
            A.year_end_day(data.coverage["last_year"].to_numpy()),
            strict=True,
        )
    )
    la_begin = dict(
        zip(
            data.coverage["la_code"],
            A.year_start_day(data.coverage["first_year"].to_numpy()),
            strict=True,
        )
    )
    fu = np.array([la_end.get(c, 0) for c in la_codes], dtype=np.int64)
    if as_of is not None:
        fu = np.minimum(fu, A.day_number(as_of))
    begin = np.array([la_begin.get(c, 0) for c in la_codes], dtype=np.int64)
    exited = ~is_open & ~lost & (end <= fu)
    obs_end = np.where(exited, end, np.where(lost & (end <= fu), end, fu))
    obs_end = np.maximum(obs_end, start)
    rec_last = rec_codes[last]
    rec_word = np.array([*rec_cats, ""], dtype=object)[np.where(exited, rec_last, -1)]
    kin = exited & np.isin(rec_word, list(kin_codes))
    days = (np.where(exited, end, obs_end) - start).astype(float)

    move_codes = [rne_cats.index(c) for c in PLACEMENT_CHANGE_RNE if c in rne_cats]
    moves_rne = np.isin(rne_codes, move_codes) & ~new_period
    seen = decom <= obs_end[period]
    out: dict[str, object] = {
        "la_code": la_codes,
        "child": ep["child"].astype(str).to_numpy()[first],
        "child_key": key[first],
        "entry_date": A.to_datetime64(start.astype(np.int32)),
        "entry_year": A.financial_year(start),
        "entry_quarter": pd.PeriodIndex.from_fields(
            year=A.quarter_number(start) // 4,
            quarter=A.quarter_number(start) % 4 + 1,
            freq="Q-DEC",
        ),
        "entry_number": entry_number + 1,
        "prior_care": entry_number > 0,
        "observed_entry": is_s[first] & (decom[first] >= begin),
    }
    out.update(_characteristics(data, ep, first, start, codes))
    group_rec = codes.groups("REC")
    out["exit_date"] = A.to_datetime64(np.where(exited, end, A.NO_DATE).astype(np.int32))
    out["rec"] = pd.Categorical(np.where(exited, rec_word, None), categories=rec_cats)
    out["exit_group"] = [group_rec.get(w, "") if w else "" for w in rec_word]
    out["follow_up_end"] = A.to_datetime64(obs_end.astype(np.int32))
    out["censored"] = ~exited
    out["lost_to_follow_up"] = lost & ~exited
    out["days_in_care"] = days
    out["placement_moves"] = np.bincount(period[moves_rne & seen], minlength=len(first))
    for months in windows:
        d = window_days(months)
        known = exited | (obs_end - start >= d)
        within = exited & (end - start <= d)
        outcome = np.where(kin & within, 1.0, 0.0)
        outcome[~known] = np.nan
        out[f"left_to_kin_{months}m"] = outcome
        out[f"censored_{months}m"] = ~known
        out[f"window_complete_{months}m"] = start + d <= fu
        capped = np.minimum(days, d)
        capped[~known] = np.nan
        out[f"days_in_care_{months}m"] = capped
        in_window = moves_rne & (decom - start[period] <= d) & seen
        moves = np.bincount(period[in_window], minlength=len(first)).astype(float)
        moves[~known] = np.nan
        out[f"placement_moves_{months}m"] = moves
    out["synthetic"] = bool(data.synthetic)
    frame = pd.DataFrame(out)
    if entries_only:
        frame = frame.loc[frame["observed_entry"]].reset_index(drop=True)
    return frame


def _characteristics(
    data: EpisodeData,
    ep: pd.DataFrame,
    first: np.ndarray,
    start: np.ndarray,
    codes: CodeLists,
) -> dict[str, object]:
    out: dict[str, object] = {}
    for col, field in (("cin", "CIN"), ("ls", "LS"), ("place", "PLACE")):
        if col in ep:
            values = ep[col].iloc[first].to_numpy()
            out[col] = pd.Categorical(values, categories=codes.codes(field))
    ls_groups = codes.groups("LS")
    place_groups = codes.groups("PLACE")
    if "ls" in out:
        out["ls_group"] = [ls_groups.get(v, "") for v in np.asarray(out["ls"], dtype=object)]
    if "place" in out:
        out["placement_group"] = [
            place_groups.get(v, "") for v in np.asarray(out["place"], dtype=object)
        ]
    n = len(first)
    if data.header is None:
        out["age_at_entry"] = np.full(n, np.nan)
        out["sex"] = pd.Categorical([None] * n, categories=codes.codes("SEX"))
        out["ethnic"] = pd.Categorical([None] * n, categories=codes.codes("ETHNIC"))
        out["ethnic_group"] = [""] * n
        return out
    head = data.header.set_index("child_key")
    keys = ep["child_key"].to_numpy()[first]
    dob = A.from_datetime64(head["dob"].reindex(keys).to_numpy()).astype(np.int64)
    age = (start - dob) / 365.25
    age[dob == A.NO_DATE] = np.nan
    out["age_at_entry"] = age
    out["sex"] = pd.Categorical(
        head["sex"].reindex(keys).astype(object).to_numpy(), categories=codes.codes("SEX")
    )
    ethnic = head["ethnic"].reindex(keys).astype(object).to_numpy()
    out["ethnic"] = pd.Categorical(ethnic, categories=codes.codes("ETHNIC"))
    groups = codes.groups("ETHNIC")
    out["ethnic_group"] = [groups.get(v, "unknown") if isinstance(v, str) else "" for v in ethnic]
    return out

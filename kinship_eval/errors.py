"""The package's own exceptions and warnings.

Every problem with an input file is raised as :class:`InputError`, which names the file, the row and
the column where it was found, so that the command line can print one clear line instead of a
traceback.
"""

from __future__ import annotations

from pathlib import Path


class KinshipEvalError(Exception):
    """Base class of every error the package raises on purpose."""


class InputError(KinshipEvalError):
    """A problem in an input file or table.

    Parameters
    ----------
    message
        What is wrong, in plain words.
    file
        The file (or a label for an in-memory table) the problem was found in.
    row
        The 1-based line number in the file (the header is line 1), when one row is at fault.
    column
        The column at fault, when one is.
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | Path | None = None,
        row: int | None = None,
        column: str | None = None,
    ) -> None:
        self.message = message
        self.file = str(file) if file is not None else None
        self.row = row
        self.column = column
        super().__init__(self._format())

    def _format(self) -> str:
        where = []
        if self.file is not None:
            where.append(self.file)
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.column is not None:
            where.append(f"column '{self.column}'")
        prefix = ", ".join(where)
        return f"{prefix}: {self.message}" if prefix else self.message


class SpecError(KinshipEvalError):
    """An invalid analysis specification (unknown field, bad value)."""


class EstimationError(KinshipEvalError):
    """A model cannot be estimated on the data given (e.g. no treated or no comparison units)."""


class KinshipEvalWarning(UserWarning):
    """Base class of the package's warnings."""


class InferenceWarning(KinshipEvalWarning):
    """Inference that is known to be unreliable for the design (e.g. few treated clusters)."""


class DataWarning(KinshipEvalWarning):
    """A data issue that was handled by a documented rule (dropped rows, harmonised LAs)."""

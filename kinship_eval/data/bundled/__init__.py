"""The default data shipped with the package (real DfE/ONS extracts; see DATA_NOTES.md)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def bundled_path(name: str) -> Path:
    """Path of a file in the bundled default data."""
    return Path(str(resources.files(__name__).joinpath(name)))

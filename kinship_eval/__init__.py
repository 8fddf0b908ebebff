"""kinship_eval: evaluation of England's kinship allowance pilot.

Validated DfE/ONS data loaders, difference-in-differences estimators with few-cluster inference,
Green Book cost-benefit analysis and reproducible, disclosure-safe reports.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("kinship_eval")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0"

__all__ = ["__version__"]

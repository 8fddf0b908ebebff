"""Regenerate ``benchmarks/requirements.txt`` against the current ``requirements.lock``.

Usage::

    python -m benchmarks.pin_requirements [--python python3]

Creates a scratch virtual environment, installs the package with its pins exactly as ``make bench``
does, installs the peer packages of :data:`PEERS` under the same constraints, and writes their exact
versions plus every dependency they add (packages already pinned in ``requirements.lock`` are left
to the lock). Run it after ``make lock`` or when bumping a peer.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements.lock"
OUT = Path(__file__).with_name("requirements.txt")

#: Peer packages (and tools) of the benchmarks, with what they are used for. Versions are left
#: free here and pinned in requirements.txt.
PEERS = {
    "diff-diff": "Callaway-Sant'Anna, synthetic DiD, permutation test",
    "csdid": "Callaway-Sant'Anna (port of R did)",
    "differences": "Callaway-Sant'Anna ATTgt",
    "moderndid[didhonest]": "Callaway-Sant'Anna (port of R did) and HonestDiD",
    "synthdid-py": "synthetic DiD (port of R synthdid); installs the module `synthdid`",
    "pyfixest": "TWFE and event study (feols), its wild bootstrap",
    "wildboottest": "wild cluster bootstrap",
    "pyinstrument": "profiler of python -m benchmarks.profile",
}

HEADER = """\
# Peer packages for `make bench` (python -m benchmarks.run), pinned exactly, with every
# dependency they add to the package's own pins. The constraint line keeps those pins
# (requirements.lock) untouched: this file only adds packages.
# Regenerate with `python -m benchmarks.pin_requirements` after the lock changes.
#
# Not here: synthdid (pins numpy==1.23.5, pandas==1.5.3, ... and breaks on pandas 3) and
# honestdid (requires torch); see benchmarks/README.md.
-c ../requirements.lock
"""


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pins(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        line = line.split("#")[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            out[_norm(name)] = f"{name}=={version}"
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--python", default="python3", help="interpreter for the scratch venv")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-pin-") as tmp:
        venv = Path(tmp) / "venv"
        pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]
        subprocess.run([args.python, "-m", "venv", str(venv)], check=True)
        subprocess.run([*pip, "--upgrade", "pip"], check=True)
        subprocess.run([*pip, "-c", str(LOCK), "-e", f"{ROOT}[dev]"], check=True, cwd=ROOT)
        subprocess.run([*pip, "-c", str(LOCK), *PEERS], check=True, cwd=ROOT)
        frozen = subprocess.run(
            [str(venv / "bin" / "python"), "-m", "pip", "freeze", "--exclude-editable"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    lock = _pins(LOCK.read_text())
    installed = _pins(frozen)
    peers = {_norm(p.split("[")[0]) for p in PEERS}
    lines = [HEADER, "# peers and tools"]
    for spec, why in PEERS.items():
        name = _norm(spec.split("[")[0])
        version = installed[name].split("==", 1)[1]
        lines.append(f"{spec}=={version}  # {why}")
    lines += ["", "# their dependencies (beyond requirements.lock)"]
    extra = [pin for name, pin in installed.items() if name not in lock and name not in peers]
    lines += sorted(extra, key=str.lower)
    OUT.write_text("\n".join(lines) + "\n")
    print(f"wrote {OUT} ({len(PEERS)} peers, {len(extra)} dependencies)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Profile our side of one benchmark case.

Usage::

    python -m benchmarks.profile CASE [--impl ours] [--runs 1] [--html FILE] [--interval 0.001]

The implementation runs once untimed (warm-up), then ``--runs`` times under pyinstrument (or
cProfile when pyinstrument is not installed); the call tree is printed, restricted to frames that
take at least 1% of the time.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import warnings
from pathlib import Path

from benchmarks.harness import Impl
from benchmarks.run import collect


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.profile", description=__doc__)
    parser.add_argument("case", help="exact case name (see python -m benchmarks.run --list)")
    parser.add_argument("--impl", default="ours", help="implementation to profile (a peer name)")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--html", type=Path, help="also write pyinstrument's HTML report here")
    parser.add_argument("--interval", type=float, default=0.001, help="sampling interval (s)")
    args = parser.parse_args(argv)

    matches = [c for c in collect([args.case]) if c.name == args.case]
    if not matches:
        parser.error(f"no case named {args.case}")
    case = matches[0]
    impl = next(
        (i for i in [case.ours, *case.peers] if isinstance(i, Impl) and i.name == args.impl), None
    )
    if impl is None:
        parser.error(f"{args.impl} is not available in {args.case}")

    warnings.simplefilter("ignore")
    impl.run(impl.setup())  # warm-up
    inputs = [impl.setup() for _ in range(args.runs)]
    try:
        from pyinstrument import Profiler
    except ImportError:
        profile = cProfile.Profile()
        profile.enable()
        for arg in inputs:
            impl.run(arg)
        profile.disable()
        pstats.Stats(profile, stream=sys.stdout).sort_stats("cumulative").print_stats(40)
        return 0
    profiler = Profiler(interval=args.interval)
    profiler.start()
    for arg in inputs:
        impl.run(arg)
    profiler.stop()
    print(profiler.output_text(unicode=True, color=False, show_all=False, time="percent_of_total"))
    if args.html:
        args.html.write_text(profiler.output_html())
    return 0


if __name__ == "__main__":
    sys.exit(main())

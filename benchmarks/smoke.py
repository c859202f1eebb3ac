"""`--smoke` for every benchmark: the same script at sizes that run in seconds. The test suite
runs each script so (tests/integration/test_benchmarks_smoke.py), so a change that breaks a
benchmark fails the suite instead of being found by the next person who measures."""

from __future__ import annotations

import argparse
from typing import Any


def parse_args(parser: argparse.ArgumentParser, **smoke_sizes: Any) -> argparse.Namespace:
    """The script's arguments; with --smoke, `smoke_sizes` replace the defaults (options given
    on the command line still win)."""
    parser.add_argument("--smoke", action="store_true",
                        help="tiny sizes that run in seconds (the test suite runs every benchmark so)")
    args = parser.parse_args()
    if args.smoke:
        parser.set_defaults(**smoke_sizes)
        args = parser.parse_args()
    return args

"""argparse types for the command line's numbers: a mistaken value is one line and exit 2, never a
traceback or a silent surprise (-1 agencies sliced the list from its end, -1 files compacted every
partition, --retention-hours nan was a traceback and -5 expired all time travel)."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

TEN_YEARS_H = 24 * 3660


def at_least(low: int) -> Callable[[str], int]:
    """A whole number no less than `low`."""
    def parse(text: str) -> int:
        try:
            n = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if n < low:
            raise argparse.ArgumentTypeError(f"{n} is below {low}")
        return n
    return parse


def hours(positive: bool = False) -> Callable[[str], float]:
    """A finite number of hours up to ten years, not negative (or, `positive`, above 0)."""
    def parse(text: str) -> float:
        try:
            n = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number of hours") from None
        if not math.isfinite(n) or n < 0 or (positive and n == 0) or n > TEN_YEARS_H:
            raise argparse.ArgumentTypeError(f"{text} is not a number of hours {'above' if positive else 'from'} 0 "
                                             "up to ten years")
        return n
    return parse

"""The double's own state, beside moto's backends: its clock, how long exports take, and the
rules tests set (fail or stall the exports of a table).

One per process, like moto's backends: the in-process double and a ThreadedMotoServer in the
same process share it; a server in another process is driven over HTTP (see control.py).
"""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta


class Clock:
    """AWS's notion of now, for item write times, PITR windows and export times: the real time
    until set, then fixed until moved. It never goes back behind a time it has stamped on a write
    or an export (DynamoDB cannot write in the past, and an export's snapshot must not change
    after it was asked for); reading it stamps nothing."""

    def __init__(self) -> None:
        self._fixed_us: int | None = None
        self._stamped_us = 0
        self._lock = threading.Lock()

    def now_us(self) -> int:
        with self._lock:
            return self._now()

    def _now(self) -> int:
        now = self._fixed_us if self._fixed_us is not None else time.time_ns() // 1000
        return max(now, self._stamped_us)

    def stamp_us(self) -> int:
        """Now, remembered as used: the clock will not be set back behind it."""
        with self._lock:
            self._stamped_us = self._now()
            return self._stamped_us

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.now_us() / 1e6, UTC)

    def set(self, when: datetime) -> None:
        us = int(when.timestamp() * 1_000_000)
        with self._lock:
            if us < self._stamped_us:
                raise ValueError(f"the clock cannot go back to {when.isoformat()}: a write or an export was "
                                 f"stamped at {datetime.fromtimestamp(self._stamped_us / 1e6, UTC).isoformat()}")
            self._fixed_us = us

    def advance(self, delta: timedelta | float) -> datetime:
        """Move the clock forward (seconds or a timedelta); a real clock is fixed at now first."""
        seconds = delta.total_seconds() if isinstance(delta, timedelta) else float(delta)
        with self._lock:
            self._fixed_us = self._now() + int(seconds * 1_000_000)
        return self.now()

    def real(self) -> None:
        """Follow the real time again (it still never goes back behind a stamp)."""
        with self._lock:
            self._fixed_us = None

    @property
    def fixed(self) -> bool:
        return self._fixed_us is not None


@dataclass
class Rule:
    """What happens to the exports of `table` (a name or an ARN; None: every table) requested
    from now on: FAILED with this code and message, or stalled (IN_PROGRESS for ever)."""

    table: str | None = None
    failure_code: str | None = None
    failure_message: str = ""
    stall: bool = False

    def matches(self, table_arn: str) -> bool:
        return self.table is None or self.table == table_arn or table_arn.endswith(f":table/{self.table}")


@dataclass
class Timing:
    """An export stays IN_PROGRESS until both hold: `seconds` of real time have passed since the
    request (wall clock, so a fixed test clock never blocks it), and `describes` DescribeExport
    calls have answered IN_PROGRESS (1 by default: the answer right after a request is always
    IN_PROGRESS, so code that does not wait fails every time, not now and then)."""

    seconds: float = 0.2
    describes: int = 1
    data_files: int = 2  # data files of a full export (AWS: one or more per partition, some empty)


@dataclass
class DoubleState:
    clock: Clock = field(default_factory=Clock)
    timing: Timing = field(default_factory=Timing)
    rules: list[Rule] = field(default_factory=list)
    lock: threading.RLock = field(default_factory=threading.RLock)

    def reset(self) -> None:
        with self.lock:
            self.clock = Clock()
            self.timing = Timing()
            self.rules = []

    def rule_for(self, table_arn: str) -> Rule | None:
        with self.lock:
            return next((r for r in reversed(self.rules) if r.matches(table_arn)), None)

    def describe(self) -> dict:
        return {"now": self.clock.now().isoformat(), "clock_fixed": self.clock.fixed,
                "timing": asdict(self.timing), "rules": [asdict(r) for r in self.rules]}


STATE = DoubleState()

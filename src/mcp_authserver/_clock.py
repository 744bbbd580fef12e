"""Time as an injectable dependency, so expiry is tested without sleeping."""

from __future__ import annotations

import time
from collections.abc import Callable

Clock = Callable[[], float]
"""Returns the current time in epoch seconds, like `time.time`."""

system_clock: Clock = time.time

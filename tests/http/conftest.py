from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.conftest import FakeClock
from tests.harness import Harness, running_harness


@pytest.fixture
async def harness(clock: FakeClock, upstream_url: str) -> AsyncIterator[Harness]:
    async with running_harness(clock, upstream_url) as running:
        yield running

"""One Backoff for the bus's redeliveries and the supervisor's restarts."""

from __future__ import annotations

import minga.bus
import minga.deploy
from minga.backoff import Backoff
from minga.deploy import RestartPolicy


def test_one_backoff_with_each_users_defaults() -> None:
    assert minga.bus.Backoff is Backoff and minga.deploy.Backoff is Backoff
    assert [Backoff().delay(n) for n in range(7)] == [0.0, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0]
    assert Backoff().delay(9) == 30.0
    restarts = RestartPolicy().backoff
    assert [restarts.delay(n) for n in range(8)] == [0.0, 0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 10.0]
    assert minga.bus.QueuePolicy().backoff == Backoff()

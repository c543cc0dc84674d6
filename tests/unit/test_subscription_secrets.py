"""A subscription's secret, and the one its reactivation replaced while the grace period lasts, are accepted."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from service.store.subscriptions import Subscription
from service.usecases.notifications.auth import secret_hash
from service.usecases.notifications.sender import secret_accepted

ROTATED = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
GRACE = timedelta(seconds=300)


def subscription(previous: str | None, until: datetime | None) -> Subscription:
    return Subscription(
        id="cp-1",
        kind="backport",
        topic=None,
        criteria=(),
        payload="id-only",
        endpoint="https://carepath.example/notifications",
        secret_hash=secret_hash("new"),
        status="active",
        heartbeat_seconds=None,
        created_at=ROTATED - timedelta(days=1),
        previous_secret_hash=None if previous is None else secret_hash(previous),
        previous_secret_until=until,
    )


@pytest.mark.parametrize(
    ("presented", "previous", "until", "at", "accepted"),
    [
        ("new", "old", ROTATED + GRACE, ROTATED, True),
        ("new", None, None, ROTATED + 10 * GRACE, True),
        ("old", "old", ROTATED + GRACE, ROTATED, True),  # just rotated
        ("old", "old", ROTATED + GRACE, ROTATED + GRACE - timedelta(seconds=1), True),
        ("old", "old", ROTATED + GRACE, ROTATED + GRACE, False),  # the grace period is over
        ("old", None, None, ROTATED, False),  # rotated without grace (by hand: it may have leaked)
        ("older", "old", ROTATED + GRACE, ROTATED, False),  # only the one secret before
        (None, "old", ROTATED + GRACE, ROTATED, False),
    ],
)
def test_the_current_secret_always_and_the_previous_one_only_until_its_grace_period_ends(
    presented: str | None, previous: str | None, until: datetime | None, at: datetime, accepted: bool
) -> None:
    assert secret_accepted(subscription(previous, until), presented, at) is accepted

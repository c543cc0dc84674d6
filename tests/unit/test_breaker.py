"""The per-EHR circuit breaker: opens after consecutive failures, lets one probe through later."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from service.ehr import breaker
from service.store import migrate
from service.store.database import make_engine
from service.usecases.delivery import retry_delay

T = datetime(2026, 3, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> sa.Engine:
    engine = make_engine(f"sqlite:///{tmp_path_factory.mktemp('breaker') / 'breaker.db'}")
    migrate.upgrade(engine)
    return engine


@pytest.fixture()
def ehr(request: pytest.FixtureRequest) -> str:
    """A breaker of its own for each test: one per EHR name, in the shared database."""
    return f"https://ehr.example.test/{request.node.name}"


def fail(db: sa.Engine, ehr: str, times: int, at: datetime = T) -> None:
    for _ in range(times):
        breaker.failed(db, ehr, at)


def test_the_breaker_stays_closed_below_the_threshold(db: sa.Engine, ehr: str) -> None:
    fail(db, ehr, breaker.FAILURE_THRESHOLD - 1)
    breaker.before_call(db, ehr, T)
    assert breaker.state_of(db, ehr) == "closed"


def test_a_success_forgets_earlier_failures(db: sa.Engine, ehr: str) -> None:
    fail(db, ehr, breaker.FAILURE_THRESHOLD - 1)
    breaker.succeeded(db, ehr, T)
    fail(db, ehr, breaker.FAILURE_THRESHOLD - 1)
    assert breaker.state_of(db, ehr) == "closed"


def test_the_breaker_opens_at_the_threshold_and_refuses_calls_during_the_cool_down(db: sa.Engine, ehr: str) -> None:
    fail(db, ehr, breaker.FAILURE_THRESHOLD)
    assert breaker.state_of(db, ehr) == "open"
    with pytest.raises(breaker.BreakerOpen) as refused:
        breaker.before_call(db, ehr, T + breaker.COOL_DOWN / 2)
    assert refused.value.retry_after == pytest.approx((breaker.COOL_DOWN / 2).total_seconds())


def test_after_the_cool_down_exactly_one_caller_probes(db: sa.Engine, ehr: str) -> None:
    fail(db, ehr, breaker.FAILURE_THRESHOLD)
    later = T + breaker.COOL_DOWN + timedelta(seconds=1)
    breaker.before_call(db, ehr, later)  # the probe
    assert breaker.state_of(db, ehr) == "half-open"
    with pytest.raises(breaker.BreakerOpen):
        breaker.before_call(db, ehr, later)


def test_a_successful_probe_closes_and_a_failed_probe_reopens(db: sa.Engine, ehr: str) -> None:
    fail(db, ehr, breaker.FAILURE_THRESHOLD)
    later = T + breaker.COOL_DOWN + timedelta(seconds=1)
    breaker.before_call(db, ehr, later)
    breaker.failed(db, ehr, later)
    assert breaker.state_of(db, ehr) == "open"
    again = later + breaker.COOL_DOWN + timedelta(seconds=1)
    breaker.before_call(db, ehr, again)
    breaker.succeeded(db, ehr, again)
    assert breaker.state_of(db, ehr) == "closed"
    breaker.before_call(db, ehr, again)


def test_a_probe_that_never_reports_frees_the_slot_after_its_timeout(db: sa.Engine, ehr: str) -> None:
    fail(db, ehr, breaker.FAILURE_THRESHOLD)
    later = T + breaker.COOL_DOWN + timedelta(seconds=1)
    breaker.before_call(db, ehr, later)
    breaker.before_call(db, ehr, later + breaker.PROBE_TIMEOUT + timedelta(seconds=1))


@pytest.mark.parametrize("retries", [0, 3, 10, 50])
def test_retry_delay_is_jittered_capped_and_honours_retry_after(retries: int) -> None:
    delays = [retry_delay(retries, None, 600) for _ in range(200)]
    assert all(0 <= d <= min(600, 2 ** (retries + 1)) for d in delays)
    assert len(set(delays)) > 1  # jitter: retries of many deliveries do not stampede together
    assert retry_delay(retries, 900, 600) == 900  # the EHR asked for longer: wait that long


def test_the_sweeper_leaves_a_delivery_alone_while_its_scheduled_retry_is_still_to_come(db: sa.Engine) -> None:
    from service.store import decisions, outbox
    from service.store.tables import decisions as decision_rows
    from service.store.tables import deliveries

    with db.begin() as connection:
        decision_id = connection.execute(
            sa.insert(decision_rows)
            .values(
                patient_id="p",
                decision_key=f"k-{datetime.now(UTC).timestamp()}",
                step="s",
                priority="routine",
                definition="d",
                decided_at=T,
                explanation="e",
                evidence=[],
                status="active",
                created_at=T,
            )
            .returning(decision_rows.c.id)
        ).scalar_one()
        connection.execute(
            sa.insert(deliveries).values(
                decision_id=decision_id, status="pending", attempts=1, urgent=False, updated_at=T
            )
        )
        cutoff = T + timedelta(minutes=5)
        assert decision_id in [d for d, _ in decisions.undelivered_before(connection, cutoff)]
        outbox.schedule_retry(connection, decision_id, T + timedelta(minutes=10))
        assert decision_id not in [d for d, _ in decisions.undelivered_before(connection, cutoff)]
        assert decision_id in [d for d, _ in decisions.undelivered_before(connection, T + timedelta(minutes=11))]

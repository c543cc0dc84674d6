"""Carepath's delivery guarantees under faults, with the real parts: PostgreSQL, redis-server,
`carepath serve|worker|beat` processes and SEKMET as the EHR.

Each test breaks one thing on purpose — the EHR, a worker, the broker, the EHR's answers — and
then reads the outcome from Carepath's database and from the EHR itself. Every test runs on a
private redis-server, so restarting it (or killing the workers reading from it) never touches
the machine's shared Redis, and no other test run's worker can take these tests' messages.

Timings come from the environment, as an operator would set them: beat sweeps every second
and re-queues work stranded for a few seconds instead of two minutes, and EHR timeouts are short.
The breaker's cool-down is the production 30 s, so the tests that open it wait that long.
"""

from __future__ import annotations

import json
import random
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
import sqlalchemy as sa

from pathways.definition import default_definition
from pathways.fhir.outbound import key_of
from pathways.replay import replay
from service.queue import DRAIN_EVENTS, EVALUATE_QUEUE, URGENT_QUEUE, Dispatcher
from service.settings import Settings
from service.store.database import make_engine, transaction
from service.store.state_codec import pathway_state_to_json
from service.store.tables import inbound_events
from service.usecases import intake as ingest
from service.usecases.dry_run import dry_run, records_of_bundle
from tests.builders import AUTHOR, CAUDA_EQUINA, FEVER, ODI, PAIN, finding, measure, pt_visit
from tests.ehr.sekmet import SekmetServer
from tests.faults.helpers import (
    RED_FLAG_TASKS,
    BreakerWatch,
    Ehr,
    Truth,
    breaker_state,
    carepath_env,
    kill_process,
    launcher,
    log_text,
    pool_children,
    post,
    red_flag_case,
)
from tests.faults.proxy import FaultPlan, FaultProxy
from tests.faults.redis_server import RedisServer
from tests.processes import wait_until
from tests.stack import new_patient_id, settings_env
from workers.celery_app import make_celery

STRANDED_AFTER_SECONDS = 4  # well above a normal queue wait here, so a sweep finds only real strays
FAST = {
    "SWEEP_INTERVAL_SECONDS": "1",
    "STRANDED_AFTER_SECONDS": str(STRANDED_AFTER_SECONDS),
    "EHR_CONNECT_TIMEOUT": "1",
    "EHR_READ_TIMEOUT": "5",
}
BREAKER_COOL_DOWN_SECONDS = 30  # workers/breaker.py COOL_DOWN
# Convergence after a fault: a breaker cool-down, a sweep, a backoff step and the work itself.
CONVERGE_SECONDS = BREAKER_COOL_DOWN_SECONDS + 60


@pytest.fixture(scope="module")
def broker() -> Iterator[RedisServer]:
    with RedisServer() as server:
        yield server


@pytest.fixture()
def fresh_broker(broker: RedisServer) -> RedisServer:
    """The private broker, running and empty: nothing left from an earlier test's queues."""
    broker.start()
    client = broker.client()
    client.flushall()
    client.close()
    return broker


@pytest.fixture(scope="module")
def db(postgres_url: str) -> Iterator[sa.Engine]:
    engine = make_engine(postgres_url)
    yield engine
    engine.dispose()


@pytest.fixture()
def base_env(postgres_url: str, fresh_broker: RedisServer, tmp_path: Path) -> dict[str, str]:
    """The environment of this test's processes, before the EHR is chosen."""
    settings = replace(Settings.from_env({}), database_url=postgres_url, log_format="json")
    return carepath_env(settings_env(settings), tmp_path / "carepath", REDIS_URL=fresh_broker.url(), **FAST)


def ehr_of(server: SekmetServer) -> Ehr:
    return Ehr(server.base_url, server.auth_headers())


def origin(base_url: str) -> str:
    """scheme://host:port of a FHIR base URL, which the fault proxy forwards to."""
    return base_url.split("/fhir")[0]


def all_delivered(truth: Truth, expected: int) -> bool:
    return truth.delivery_statuses() == Counter({"delivered": expected})


def assert_one_copy_of_everything(ehr: Ehr, truth: Truth) -> None:
    """Every resource Carepath decided to write is in the EHR exactly once."""
    keys = truth.proposal_keys()
    assert keys, "no proposals were stored"
    copies = ehr.copies_of_each(keys)
    assert {key: n for key, n in copies.items() if n != 1} == {}


def claims_in_flight(db: sa.Engine, patients: list[str]) -> int:
    """Pending events of `patients` a worker has claimed for a batch it has not committed."""
    with db.connect() as connection:
        return connection.execute(
            sa.select(sa.func.count())
            .select_from(inbound_events)
            .where(
                inbound_events.c.patient_id.in_(patients),
                inbound_events.c.status == "pending",
                inbound_events.c.claimed_at.is_not(None),
            )
        ).scalar_one()


def test_a_worker_killed_mid_batch_decides_nothing_twice_and_its_batch_is_evaluated_again(
    base_env: dict[str, str], db: sa.Engine
) -> None:
    """The oracle is each patient's sequential dry run, as for the racing workers below.

    A backlog is stored while no worker runs; a worker drains it in small batches and is SIGKILLed
    while it holds a claimed batch it has not committed. Its claim lapses, beat wakes the lane, a
    new worker evaluates the batch again: every fact counts once, every decision is the dry run's.
    """
    now = datetime.now(UTC)
    t0 = now - timedelta(weeks=7)
    cases = [minor_flag_and_checkpoint_case, major_flag_case] * 12
    facts = {patient: case(patient, t0) for patient, case in ((new_patient_id(), case) for case in cases)}
    oracle = {patient: dry_run_of(resources, now) for patient, resources in facts.items()}
    patients = list(facts)
    truth = Truth(db, patients)
    everything = [r for resources in facts.values() for r in resources]
    random.Random(20261206).shuffle(everything)
    with transaction(db) as connection:  # stored as the API stores them; no worker is running yet
        for resource in everything:
            ingest.store(connection, ingest.prepare(resource, resource["resourceType"]), "test", now)

    env = {**base_env, "EVALUATION_BATCH_SIZE": "8", "EVALUATION_LEASE_SECONDS": "3"}
    with launcher(env, "batch-kill") as run:
        worker = run.worker(concurrency=1)  # its connection to the broker wakes the lanes
        wait_until(
            lambda: truth.event_statuses()["processed"] > 0 and claims_in_flight(db, patients) > 0,
            60,
            interval=0.01,
            what="the worker to hold a claimed batch after committing one",
        )
        worker.kill(signal.SIGKILL)  # the whole process group: the Celery parent and its pool
        wait_until(lambda: not worker.alive(), 10, what="the worker to die")
        assert claims_in_flight(db, patients) > 0, "the worker was not killed mid-batch"
        assert truth.event_statuses()["pending"] > 0

        run.together(lambda: run.worker("worker-2"), run.beat)
        wait_until(lambda: truth.event_statuses() == {"processed": len(everything)}, 60, what="every event evaluated")
        expected = sum(len(o.decided) for o in oracle.values())
        wait_until(lambda: len(truth.decisions()) >= expected, 30, what="the overdue checkpoints decided")
        logs = run.logs()

    stored = truth.decisions()
    for patient, resources in facts.items():
        live = {
            d["decision_key"]: (d["step"], d["priority"])
            for d in stored
            if d["patient_id"] == patient and d["status"] == "active"
        }
        assert live == oracle[patient].decided, logs
        assert normalized(measures_of(truth.state(patient))) == oracle[patient].measures, logs
        assert truth.records()[patient] == len(resources)
        # Every fact applied once: on its own in clinical order, or by a replay when it came late
        # (a batch takes a patient's facts in clinical order, but a patient's facts may span batches).
        triggers = truth.triggers()[patient]
        applied = [t for t in triggers if t.startswith("fact ")]
        assert len(applied) == len(set(applied)), triggers
        replayed = any(t.startswith("replay after the late fact ") for t in triggers)
        assert len(applied) == len(resources) or (replayed and len(applied) < len(resources)), triggers


def test_decisions_made_while_the_ehr_is_down_reach_it_exactly_once_after_it_comes_back(
    base_env: dict[str, str], db: sa.Engine, tmp_path: Path
) -> None:
    server = SekmetServer(db_path=tmp_path / "ehr.db").start()  # a file store survives the restart
    ehr = ehr_of(server)
    patients = [new_patient_id() for _ in range(3)]
    truth = Truth(db, patients)
    env = {**base_env, "EHR_BASE_URL": server.base_url, "EHR_TOKEN": server.token}
    start = datetime.now(UTC) - timedelta(days=3)
    try:
        with launcher(env, "ehr-outage") as run:
            _, _, base = run.together(run.worker, run.beat, run.api)
            server.stop()

            for patient in patients:
                assert [post(base, event) for event in red_flag_case(patient, start)] == [201, 201]
            wait_until(lambda: truth.event_statuses() == {"processed": 6}, 30, what="every event evaluated")
            # The EHR is down: each decision is stored, and its delivery tried and recorded as failed.
            wait_until(
                lambda: (
                    len(truth.deliveries()) == 3
                    and all("unavailable" in outcomes for outcomes in truth.attempts().values())
                    and len(truth.attempts()) == 3
                ),
                BREAKER_COOL_DOWN_SECONDS + 30,
                what="a failed attempt for every delivery",
            )
            assert truth.delivery_statuses() == {"pending": 3}

            server.start()  # same port, same file store
            wait_until(lambda: all_delivered(truth, 3), CONVERGE_SECONDS, what="every decision delivered")
            logs = run.logs()

        for patient in patients:
            assert ehr.task_codes(patient) == RED_FLAG_TASKS, logs
            assert ehr.count("ServiceRequest", patient) == 1
        assert_one_copy_of_everything(ehr, truth)
        # The failed attempts are on record, before the delivery that succeeded.
        for outcomes in truth.attempts().values():
            first_success = outcomes.index("delivered")
            assert first_success >= 1 and set(outcomes[:first_success]) == {"unavailable"}, outcomes
        # An outage never re-runs clinical logic: one decision, and one evaluation per fact.
        assert Counter(d["patient_id"] for d in truth.decisions()) == Counter(dict.fromkeys(patients, 1))
        assert truth.fact_evaluations() == Counter(dict.fromkeys(patients, 2))
    finally:
        server.close()


def test_a_worker_killed_mid_delivery_is_replaced_and_the_ehr_still_holds_one_copy_of_each_resource(
    base_env: dict[str, str], db: sa.Engine, sekmet: SekmetServer
) -> None:
    # The EHR holds every write for a while and then applies it even if the caller has died:
    # the worst moment to lose a worker, after the write but before Carepath records it.
    proxy = FaultProxy(origin(sekmet.base_url), FaultPlan(write_delay_seconds=3.0)).start()
    env = {**base_env, "EHR_BASE_URL": proxy.url_for("/fhir"), "EHR_TOKEN": sekmet.token, "EHR_READ_TIMEOUT": "10"}
    ehr = ehr_of(sekmet)
    patient = new_patient_id()
    truth = Truth(db, [patient])
    try:
        with launcher(env, "sigkill") as run:
            worker, _, base = run.together(run.worker, run.beat, run.api)
            assert [post(base, e) for e in red_flag_case(patient, datetime.now(UTC) - timedelta(days=3))] == [201, 201]

            wait_until(lambda: proxy.received["POST /fhir"] >= 1, 30, what="the worker to be mid-delivery")
            worker.kill(signal.SIGKILL)  # the whole process group: the Celery parent and its pool
            wait_until(lambda: not worker.alive(), 10, what="the worker to die")

            wait_until(lambda: ehr.task_codes(patient) == RED_FLAG_TASKS, 15, what="the held write to land")
            # The EHR has the resources; Carepath never heard back and still owes the delivery.
            assert truth.delivery_statuses() == {"pending": 1}
            assert "delivered" not in sum(truth.attempts().values(), [])

            proxy.plan.write_delay_seconds = 0.0
            run.worker("worker-2")
            wait_until(lambda: all_delivered(truth, 1), 60, what="the new worker to deliver")
            logs = run.logs()
    finally:
        proxy.stop()

    assert proxy.received["POST /fhir"] >= 2, "the decision was not written again after the kill"
    assert ehr.task_codes(patient) == RED_FLAG_TASKS, logs
    assert ehr.count("ServiceRequest", patient) == 1
    assert_one_copy_of_everything(ehr, truth)


def test_a_pool_process_killed_mid_delivery_has_its_message_redelivered_by_the_broker(
    base_env: dict[str, str], db: sa.Engine, sekmet: SekmetServer
) -> None:
    # No beat: the sweeper cannot help, so only acks_late with reject-on-worker-lost can
    # bring the delivery back.
    proxy = FaultProxy(origin(sekmet.base_url), FaultPlan(write_delay_seconds=3.0)).start()
    env = {**base_env, "EHR_BASE_URL": proxy.url_for("/fhir"), "EHR_TOKEN": sekmet.token, "EHR_READ_TIMEOUT": "10"}
    ehr = ehr_of(sekmet)
    patient = new_patient_id()
    truth = Truth(db, [patient])
    try:
        with launcher(env, "pool-kill") as run:
            worker, base = run.together(lambda: run.worker(concurrency=1), run.api)
            assert [post(base, e) for e in red_flag_case(patient, datetime.now(UTC) - timedelta(days=3))] == [201, 201]

            wait_until(lambda: proxy.received["POST /fhir"] >= 1, 30, what="the pool process to be mid-delivery")
            (pool_process,) = pool_children(worker.process.pid)
            kill_process(pool_process)
            wait_until(lambda: ehr.task_codes(patient) == RED_FLAG_TASKS, 15, what="the held write to land")
            proxy.plan.write_delay_seconds = 0.0

            wait_until(lambda: all_delivered(truth, 1), 60, what="the redelivered message to be delivered")
            # The Celery parent survived and ran the message again: with no beat and no new
            # worker, nothing else could have written the decision a second time.
            assert worker.alive(), run.logs()
    finally:
        proxy.stop()

    assert proxy.received["POST /fhir"] >= 2, "the message was not redelivered"
    assert ehr.task_codes(patient) == RED_FLAG_TASKS
    assert_one_copy_of_everything(ehr, truth)


def queued_wakeups(server: RedisServer) -> Counter[str]:
    """Drain messages waiting in the broker, by queue (beat's own sweep messages aside)."""
    client = server.client()
    try:
        messages = {queue: client.lrange(queue, 0, -1) for queue in (EVALUATE_QUEUE, URGENT_QUEUE)}
    finally:
        client.close()
    return Counter(
        queue for queue, found in messages.items() for m in found if json.loads(m)["headers"]["task"] == DRAIN_EVENTS
    )


def test_events_whose_queue_messages_died_with_redis_are_all_evaluated_and_delivered(
    base_env: dict[str, str], db: sa.Engine, sekmet: SekmetServer, fresh_broker: RedisServer
) -> None:
    batches = [[new_patient_id() for _ in range(3)] for _ in range(3)]
    patients = [p for batch in batches for p in batch]
    truth = Truth(db, patients)
    ehr = ehr_of(sekmet)
    env = {**base_env, "EHR_BASE_URL": sekmet.base_url, "EHR_TOKEN": sekmet.token}
    start = datetime.now(UTC) - timedelta(days=3)

    def post_batch(base: str, batch: list[str], restart_midway: bool = False) -> list[int]:
        events = [e for patient in batch for e in red_flag_case(patient, start)]
        statuses = []
        for index, event in enumerate(events):
            if restart_midway and index == len(events) // 2:
                fresh_broker.restart()
            statuses.append(post(base, event))
        return statuses

    with launcher(env, "redis-restart") as run:
        base = run.api()
        # Stored, and the workers woken once per lane (not once per event), but no worker is
        # reading yet: these wake-ups exist only in Redis.
        assert post_batch(base, batches[0]) == [201] * 6
        assert queued_wakeups(fresh_broker) == Counter({EVALUATE_QUEUE: 1, URGENT_QUEUE: 1})
        # While Redis is down, events are still acknowledged: stored first, queueing deferred.
        fresh_broker.stop()
        assert post_batch(base, batches[1]) == [201] * 6
        fresh_broker.start()
        assert queued_wakeups(fresh_broker) == Counter()  # every queued message died with Redis
        assert truth.event_statuses() == {"pending": 12}

        run.together(run.worker, run.beat)
        # A third batch streams in while Redis restarts again under a running worker and beat.
        assert post_batch(base, batches[2], restart_midway=True) == [201] * 6

        wait_until(lambda: truth.event_statuses() == {"processed": 18}, 60, what="every event evaluated")
        wait_until(lambda: all_delivered(truth, 9), 60, what="every decision delivered")
        logs = run.logs()

    for patient in patients:
        assert ehr.task_codes(patient) == RED_FLAG_TASKS, logs
    assert Counter(d["patient_id"] for d in truth.decisions()) == Counter(dict.fromkeys(patients, 1))
    # Re-queued copies of one event may run at once; the event still counts once.
    assert truth.fact_evaluations() == Counter(dict.fromkeys(patients, 2))
    assert_one_copy_of_everything(ehr, truth)


def test_copies_of_one_events_message_run_at_once_by_several_workers_apply_the_fact_once(
    base_env: dict[str, str], db: sa.Engine, sekmet: SekmetServer
) -> None:
    # Copies of a message are ordinary at-least-once delivery: beat re-queues an event whose
    # first message is merely slow, and a worker that loses its broker connection restores its
    # unacknowledged messages while its pool may still be running them.
    patient = new_patient_id()
    truth = Truth(db, [patient])
    env = {**base_env, "EHR_BASE_URL": sekmet.base_url, "EHR_TOKEN": sekmet.token}
    visit, flag = red_flag_case(patient, datetime.now(UTC) - timedelta(days=3))
    with launcher(env, "copies") as run:
        *_, base = run.together(*(lambda name=name: run.worker(name) for name in ("w-a", "w-b", "w-c")), run.api)
        # Traffic first, so every pool process is warm and the copies truly run side by side.
        others = [new_patient_id() for _ in range(12)]
        assert {post(base, pt_visit(other, datetime.now(UTC))) for other in others} == {201}
        assert post(base, visit) == 201
        everyone = Truth(db, [*others, patient])
        wait_until(lambda: everyone.event_statuses() == {"processed": 13}, 30, what="the visits evaluated")
        # The finding is stored as the API stores it; then six copies of its message go out at once.
        prepared = ingest.prepare(flag, flag["resourceType"])
        with transaction(db) as connection:
            event_id, _ = ingest.store(connection, prepared, "test", datetime.now(UTC))
        dispatcher = Dispatcher(make_celery(Settings.from_env(env)))
        for _ in range(6):
            dispatcher.evaluate_event(event_id)
        wait_until(lambda: truth.event_statuses() == {"processed": 2}, 30, what="the finding evaluated")
        wait_until(lambda: all_delivered(truth, 1), 30, what="the red flag delivered")
        logs = run.logs()

    assert truth.fact_evaluations() == Counter({patient: 2}), logs
    assert [d["step"] for d in truth.decisions()] == ["red-flags"]
    assert ehr_of(sekmet).task_codes(patient) == RED_FLAG_TASKS
    assert_one_copy_of_everything(ehr_of(sekmet), truth)


def minor_flag_and_checkpoint_case(patient: str, t0: datetime) -> list[dict[str, Any]]:
    """Three visits, pain and ODI that do not improve, and a fever: a routine red-flag review
    when the fever arrives and `adherence` at the six-week checkpoint, a week overdue."""
    return [
        pt_visit(patient, t0),
        pt_visit(patient, t0 + timedelta(days=7)),
        pt_visit(patient, t0 + timedelta(days=14)),
        measure(patient, PAIN, 7, t0),
        measure(patient, PAIN, 7, t0 + timedelta(days=20)),
        measure(patient, ODI, 40, t0 + timedelta(days=1)),
        measure(patient, ODI, 38, t0 + timedelta(days=21)),
        finding(patient, FEVER, t0 + timedelta(days=3)),
    ]


def major_flag_case(patient: str, t0: datetime) -> list[dict[str, Any]]:
    """Visits, pain and cauda equina: a stat red flag, which holds the overdue checkpoint."""
    return [
        pt_visit(patient, t0),
        pt_visit(patient, t0 + timedelta(days=7)),
        measure(patient, PAIN, 7, t0),
        measure(patient, PAIN, 7, t0 + timedelta(days=20)),
        finding(patient, CAUDA_EQUINA, t0 + timedelta(days=3)),
    ]


def as_bundle(resources: list[dict[str, Any]]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": r} for r in resources]}


def normalized(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


@dataclass(frozen=True)
class Oracle:
    """What a sequential run in clinical order decides, {key: (step, priority)}, writes,
    {(resource type, key)}, and the measures it ends with (baseline and latest of each)."""

    decided: dict[str, tuple[str, str]]
    written: set[tuple[str, str]]
    measures: Any


def dry_run_of(resources: list[dict[str, Any]], now: datetime) -> Oracle:
    definition = default_definition()
    records = records_of_bundle(as_bundle(resources), definition)
    replayed = replay(definition, records, now)
    decided = {
        decision.key: (decision.step, decision.priority.value)
        for evaluation in replayed.evaluations
        for decision in evaluation.decisions
    }
    bundle = dry_run(definition, records, now, AUTHOR)
    written = {(entry["resource"]["resourceType"], key_of(entry["resource"])) for entry in bundle["entry"]}
    return Oracle(decided, written, normalized(measures_of(pathway_state_to_json(replayed.state))))


def measures_of(state: dict[str, Any]) -> Any:
    """Each episode's measures of a stored state (2.0: per lane; 1.x: the one state's)."""
    return [lane["state"]["measures"] for lane in state["lanes"]] if "lanes" in state else state["measures"]


def test_three_workers_racing_on_the_same_patients_decide_each_step_once_as_a_sequential_dry_run_would(
    base_env: dict[str, str], db: sa.Engine, sekmet: SekmetServer
) -> None:
    """The oracle is the dry run (`pathways.simulate`) of each patient's facts in clinical order.

    These facts give the same decisions in every arrival order (one red-flag finding per patient,
    and every measure is in before beat evaluates the overdue checkpoint), so whatever the
    interleaving across workers, the stored decisions — keys, priorities and evidence, which names
    the exact baseline and latest values — must equal the dry run's. A fact lost, applied twice or
    applied to a stale state by a racing worker would show there, in the per-patient timeline, or
    in the evaluations that applied facts.
    """
    ehr = ehr_of(sekmet)
    now = datetime.now(UTC)
    t0 = now - timedelta(weeks=7)
    cases = [minor_flag_and_checkpoint_case, minor_flag_and_checkpoint_case, major_flag_case, major_flag_case]
    facts = {patient: case(patient, t0) for patient, case in ((new_patient_id(), case) for case in cases)}
    oracle = {patient: dry_run_of(resources, now) for patient, resources in facts.items()}
    decision_count = sum(len(expected.decided) for expected in oracle.values())
    truth = Truth(db, list(facts))
    everything = [r for resources in facts.values() for r in resources]
    posts = everything * 2  # every event twice: the second copy must change nothing
    random.Random(20261127).shuffle(posts)

    env = {**base_env, "EHR_BASE_URL": sekmet.base_url, "EHR_TOKEN": sekmet.token}
    with launcher(env, "racing") as run:
        *workers, base = run.together(*(lambda name=name: run.worker(name) for name in ("w-a", "w-b", "w-c")), run.api)
        with ThreadPoolExecutor(max_workers=8) as pool:
            answers = list(pool.map(lambda resource: (resource["id"], post(base, resource)), posts))
        per_resource: dict[str, Counter[int]] = {}
        for resource_id, status in answers:
            per_resource.setdefault(resource_id, Counter())[status] += 1
        assert all(statuses == Counter({201: 1, 200: 1}) for statuses in per_resource.values()), per_resource
        wait_until(lambda: truth.event_statuses() == {"processed": len(everything)}, 60, what="every event evaluated")
        run.beat()  # every fact is in: now beat may evaluate the overdue checkpoints
        wait_until(
            lambda: len(truth.decisions()) >= decision_count and all_delivered(truth, len(truth.decisions())),
            60,
            what="every decision delivered",
        )
        logs = run.logs()
        # A race needs racers: evaluations ran in more than one worker process group.
        evaluating = [w for w in workers if "carepath.drain_events[" in log_text(w)]
        assert len(evaluating) >= 2, logs

    stored = truth.decisions()
    for patient, resources in facts.items():
        expected = oracle[patient]
        decided, written = expected.decided, expected.written
        live = {
            d["decision_key"]: (d["step"], d["priority"])
            for d in stored
            if d["patient_id"] == patient and d["status"] == "active"
        }
        assert live == decided, logs
        # The pathway ends on the facts the dry run ends on: no fact lost, none read from a stale state.
        # (A decision made before a late fact stands with the evidence it was made on; the state moves on.)
        assert normalized(measures_of(truth.state(patient))) == expected.measures, logs
        # Every event kept once and none applied twice: a fact arriving in clinical order is
        # evaluated on its own; one arriving after a later fact is late, and a replay of every
        # fact held evaluates it (spec, "Evaluating as of a moment").
        assert truth.records()[patient] == len(resources)
        triggers = truth.triggers()[patient]
        applied = [t for t in triggers if t.startswith("fact ")]
        assert len(applied) == len(set(applied)), triggers
        replayed = any(t.startswith("replay after the late fact ") for t in triggers)
        assert len(applied) == len(resources) or (replayed and len(applied) < len(resources)), triggers
        # The EHR holds exactly what the dry run would write, once each.
        for kind in ("Task", "ServiceRequest"):
            assert sorted(ehr.keys(kind, patient)) == sorted(k for t, k in written if t == kind), logs
        assert all(ehr.copies_of("Provenance", k) == 1 for t, k in written if t == "Provenance")
        assert {(t, k) for (owner, t, k) in truth.proposal_keys() if owner == patient} == written
    assert_one_copy_of_everything(ehr, truth)


def test_an_ehr_failing_at_random_gets_everything_exactly_once_while_the_breaker_opens_and_closes(
    base_env: dict[str, str], db: sa.Engine, sekmet: SekmetServer
) -> None:
    # First the EHR fails every call (500, 429 or a timeout, at random) until the breaker opens;
    # then it turns flaky: about one call in seven is a 500, a 429, a timeout, or a write
    # applied whose answer is lost.
    # The seed draws a 500, a 429 and a timeout among the first four calls.
    hard_down = FaultPlan(server_error=0.4, throttled=0.3, timeout=0.3, timeout_seconds=1.5, seed=20261129)
    proxy = FaultProxy(origin(sekmet.base_url), hard_down).start()
    breaker_name = proxy.url_for("/fhir")
    env = {**base_env, "EHR_BASE_URL": breaker_name, "EHR_TOKEN": sekmet.token, "EHR_READ_TIMEOUT": "1"}
    ehr = ehr_of(sekmet)
    major = [new_patient_id() for _ in range(4)]
    minor = [new_patient_id() for _ in range(2)]
    truth = Truth(db, major + minor)
    start = datetime.now(UTC) - timedelta(days=3)
    events = [e for p in major for e in red_flag_case(p, start)]
    events += [e for p in minor for e in (pt_visit(p, start), finding(p, FEVER, start + timedelta(days=1)))]
    try:
        with launcher(env, "flaky-ehr") as run, BreakerWatch(db, breaker_name) as watch:
            *_, base = run.together(lambda: run.worker("worker-a"), lambda: run.worker("worker-b"), run.beat, run.api)
            assert [post(base, e) for e in events] == [201] * len(events)

            wait_until(lambda: breaker_state(db, breaker_name) == "open", 60, what="the breaker to open")
            proxy.plan.server_error, proxy.plan.throttled, proxy.plan.timeout = 0.05, 0.05, 0.03
            proxy.plan.lost_answer = 0.03
            wait_until(
                lambda: all_delivered(truth, 6) and breaker_state(db, breaker_name) == "closed",
                CONVERGE_SECONDS + BREAKER_COOL_DOWN_SECONDS,
                what="every decision delivered and the breaker closed",
            )
            logs = run.logs()
    finally:
        proxy.stop()

    counts = proxy.plan.counts
    assert min(counts["500"], counts["429"], counts["timeout"]) > 0, counts
    assert "open" in watch.states and "closed" in watch.states[watch.states.index("open") :], watch.states
    for patient in major:
        assert ehr.task_codes(patient) == RED_FLAG_TASKS, logs
    for patient in minor:
        assert ehr.task_codes(patient) == Counter({"red-flag-review": 1}), logs
    assert_one_copy_of_everything(ehr, truth)
    # Every failure is on record and every decision has a successful attempt. A failure may
    # follow the success: several messages for one decision can be in flight at once (a
    # retry and the sweeper's re-queue), and a copy that loses the race may still fail.
    attempts = truth.attempts()
    assert all("delivered" in outcomes for outcomes in attempts.values()), attempts
    assert sum(outcome == "unavailable" for outcomes in attempts.values() for outcome in outcomes) >= 5, attempts


BROKER_RESTARTS = 20


class EventStream:
    """Posts a PT visit for a new patient after another from a few threads, until stopped: traffic
    that keeps tasks running or prefetched, so unacknowledged, whenever the broker goes away, yet
    slow enough for two workers on a small machine to keep up with."""

    PAUSE_SECONDS = 0.1

    def __init__(self, base: str, threads: int = 3) -> None:
        self.base = base
        self.patients: list[str] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._post, daemon=True) for _ in range(threads)]

    def __enter__(self) -> EventStream:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=40)

    def _post(self) -> None:
        while not self._stop.is_set():
            patient = new_patient_id()
            if post(self.base, pt_visit(patient, datetime.now(UTC))) == 201:
                self.patients.append(patient)
            self._stop.wait(self.PAUSE_SECONDS)


def evaluated(db: sa.Engine, patient: str) -> Callable[[], bool]:
    truth = Truth(db, [patient])
    return lambda: truth.event_statuses() == {"processed": 1}


def test_workers_survive_twenty_broker_crashes_and_restarts_under_load_and_consume_after_each(
    base_env: dict[str, str], db: sa.Engine, fresh_broker: RedisServer
) -> None:
    # Redis dies (killed or stopped) while tasks are running and unacknowledged, and is away for
    # a varying time: every worker must reconnect and keep consuming, never exit.
    outages = [0.0, 0.5, 1.0, 3.0]
    with launcher(base_env, "broker-restarts") as run:
        *workers, base = run.together(lambda: run.worker("w-a"), lambda: run.worker("w-b"), run.api)
        with EventStream(base) as stream:
            for restart in range(BROKER_RESTARTS):
                time.sleep(1.0)  # traffic flows before each crash
                if restart % 2:
                    fresh_broker.kill()
                else:
                    fresh_broker.stop()
                time.sleep(outages[restart % len(outages)])
                fresh_broker.start()
                patient = new_patient_id()
                assert post(base, pt_visit(patient, datetime.now(UTC))) == 201
                wait_until(evaluated(db, patient), 30, what=f"an event evaluated after broker restart {restart + 1}")
                assert all(worker.alive() for worker in workers), run.logs()
        # Everything acknowledged during the restarts is evaluated, without beat.
        truth = Truth(db, stream.patients)
        wait_until(
            lambda: truth.event_statuses() == {"processed": len(stream.patients)}, 120, what="every event evaluated"
        )
        logs = run.logs()
    assert "Unrecoverable error" not in logs


def test_red_flags_acknowledged_while_the_broker_is_down_reach_the_ehr_within_ten_seconds_of_its_return(
    base_env: dict[str, str], db: sa.Engine, sekmet: SekmetServer, fresh_broker: RedisServer
) -> None:
    patients = [new_patient_id() for _ in range(4)]
    truth = Truth(db, patients)
    ehr = ehr_of(sekmet)
    # Beat re-queues stranded work only after the production two minutes: only the workers'
    # reaction to the broker's return can meet the ten seconds.
    env = {**base_env, "EHR_BASE_URL": sekmet.base_url, "EHR_TOKEN": sekmet.token, "STRANDED_AFTER_SECONDS": "120"}
    start = datetime.now(UTC) - timedelta(days=3)
    with launcher(env, "broker-outage") as run:
        *workers, base = run.together(lambda: run.worker("w-a"), lambda: run.worker("w-b"), run.beat, run.api)
        fresh_broker.kill()
        for patient in patients:
            assert [post(base, event) for event in red_flag_case(patient, start)] == [201, 201]
        assert truth.event_statuses() == {"pending": 8}  # acknowledged: stored, waiting for the broker
        time.sleep(10)  # long enough for the workers' reconnect backoff to reach its cap

        fresh_broker.start()
        returned = time.monotonic()
        for patient in patients:
            remaining = 10 - (time.monotonic() - returned)
            wait_until(
                lambda patient=patient: ehr.task_codes(patient) == RED_FLAG_TASKS,
                max(remaining, 0.1),
                interval=0.25,
                what=f"the red flag of {patient} in the EHR within 10 s of the broker's return",
            )
        logs = run.logs()
        assert all(worker.alive() for worker in workers), logs

    assert_one_copy_of_everything(ehr, truth)
    assert truth.fact_evaluations() == Counter(dict.fromkeys(patients, 2)), logs


def test_readyz_and_metrics_report_the_workers_alive_and_stay_ready_when_none_is(
    base_env: dict[str, str], db: sa.Engine
) -> None:
    env = {**base_env, "WORKER_HEARTBEAT_SECONDS": "1"}
    with launcher(env, "liveness") as run:
        worker, base = run.together(lambda: run.worker("w-live"), run.api)

        def readyz() -> dict[str, Any]:
            answer = requests.get(f"{base}/readyz", timeout=10)
            assert answer.status_code == 200, answer.text  # workers never decide readiness
            body: dict[str, Any] = answer.json()
            return body

        def this_worker() -> dict[str, Any]:
            (entry,) = [e for e in readyz()["workers"]["seen"] if e["name"].startswith(f"{worker.name}@")]
            return entry

        def metric(name: str) -> float:
            text = requests.get(f"{base}/metrics", timeout=10).text
            (line,) = [line for line in text.splitlines() if line.startswith(name)]
            return float(line.rsplit(" ", 1)[1])

        # Earlier tests' killed workers may have left stale rows: only live ones count.
        assert readyz()["workers"]["alive"] == 1 and this_worker()["alive"], readyz()
        assert metric("carepath_workers_alive ") == 1
        age_metric = f'carepath_worker_heartbeat_age_seconds{{worker="{worker.name}@'
        assert metric(age_metric) < 3

        worker.kill(signal.SIGKILL)  # no goodbye: its row stays and goes stale
        wait_until(lambda: not this_worker()["alive"], 10, what="/readyz to see the killed worker gone")
        assert readyz()["workers"]["alive"] == 0
        assert metric("carepath_workers_alive ") == 0
        assert metric(age_metric) >= 3

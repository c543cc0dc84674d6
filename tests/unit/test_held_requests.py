"""What a process may hold of requests still arriving: per client address, and all together."""

from __future__ import annotations

from service.web.worker import HeldRequests

BUDGET = 1000


def held(per_address: int = 2) -> HeldRequests[str]:
    return HeldRequests(budget_bytes=BUDGET, per_address=per_address)


def test_an_address_is_admitted_until_it_has_its_limit_of_requests_arriving_and_again_once_one_ends() -> None:
    requests = held(per_address=2)
    requests.add("a", "192.0.2.1")
    requests.add("b", "192.0.2.1")
    assert not requests.admits("192.0.2.1")
    assert requests.admits("192.0.2.2")
    requests.remove("a")
    assert requests.admits("192.0.2.1")


def test_an_address_that_is_not_counted_is_always_admitted() -> None:
    requests = held(per_address=1)
    requests.add("a", None)
    requests.add("b", None)
    assert requests.admits(None)


def test_nothing_is_refused_while_the_bytes_held_fit_the_budget() -> None:
    requests = held()
    for key, size in [("a", 400), ("b", 600)]:
        requests.add(key, None)
        requests.holds(key, size)
    assert requests.total_bytes == BUDGET
    assert requests.beyond_budget() == []


def test_past_the_budget_the_largest_requests_are_refused_until_the_rest_fit() -> None:
    requests = held()
    for key, size in [("small", 50), ("large", 500), ("medium", 300), ("newest", 250)]:
        requests.add(key, None)
        requests.holds(key, size)
    assert requests.beyond_budget() == ["large"]
    requests.add("flood", None)
    requests.holds("flood", 900)
    assert requests.beyond_budget() == ["flood", "large"]


def test_a_request_that_ends_gives_back_its_bytes_and_its_place() -> None:
    requests = held(per_address=1)
    requests.add("a", "192.0.2.1")
    requests.holds("a", 300)
    requests.holds("a", 900)
    requests.remove("a")
    requests.remove("a")  # ending twice (refused, then its connection closed) is no error
    assert requests.total_bytes == 0
    assert requests.admits("192.0.2.1")

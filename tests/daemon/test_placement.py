"""The placement policy's contract, and the media plane using it to pick a worker."""

from __future__ import annotations

import pytest
import trio

from videoroomd.media.workers.plane import MediaPlane
from videoroomd.placement import Candidate, LeastLoaded

POLICIES = {"least-loaded": LeastLoaded}


@pytest.fixture(params=sorted(POLICIES))
def policy(request):
    return POLICIES[request.param]()


def test_the_candidate_with_the_fewest_rooms_is_picked(policy):
    candidates = [Candidate("1", rooms=3, cpu=0.1), Candidate("2", rooms=1, cpu=0.9), Candidate("3", rooms=2)]
    assert policy.pick(candidates).name == "2"


def test_among_equal_room_counts_the_least_busy_cpu_wins_then_the_first(policy):
    assert policy.pick([Candidate("1", rooms=1, cpu=0.8), Candidate("2", rooms=1, cpu=0.2)]).name == "2"
    assert policy.pick([Candidate("1", rooms=1, cpu=0.2), Candidate("2", rooms=1, cpu=0.2)]).name == "1"


def test_dead_candidates_are_skipped_however_idle(policy):
    candidates = [Candidate("1", rooms=0, alive=False), Candidate("2", rooms=5, cpu=3.0)]
    assert policy.pick(candidates).name == "2"
    assert policy.pick([Candidate("1", alive=False)]) is None
    assert policy.pick([]) is None


def test_a_candidate_whose_load_is_too_old_counts_as_dead():
    policy = LeastLoaded(max_age=3.0)
    candidates = [Candidate("quiet", rooms=0, age=10.0), Candidate("fresh", rooms=4, age=1.0)]
    assert policy.pick(candidates).name == "fresh"
    assert LeastLoaded().pick(candidates).name == "quiet"  # no max_age: any report will do


class Fixed:
    """A policy that always picks the candidate called ``name``."""

    def __init__(self, name: str):
        self.name = name
        self.seen: list[list[Candidate]] = []

    def pick(self, candidates):
        self.seen.append(list(candidates))
        return next((c for c in candidates if c.name == self.name and c.alive), None)


async def test_the_media_plane_places_rooms_by_its_policy():
    policy = Fixed("2")
    plane = MediaPlane(2, "thread", placement=policy)
    async with trio.open_nursery() as nursery:
        await nursery.start(plane.run)
        links = [await plane.open_room(name, lambda _event: None, ice_servers=[], certificate=None,
                                       addresses=["127.0.0.1"]) for name in ("a", "b")]
        assert [link.worker_name for link in links] == ["2", "2"]
        first, second = policy.seen
        assert [(c.name, c.rooms, c.alive) for c in first] == [("1", 0, True), ("2", 0, True)]
        assert [(c.name, c.rooms) for c in second] == [("1", 0), ("2", 1)]  # the load the plane reports
        for link in links:
            await link.close(5)
        nursery.cancel_scope.cancel()

"""Load-balancing pickers, and the local cache of instances they pick from.

Pure and synchronous: the cache is fed watch events (by :class:`DiscoveryClient` or by the
control plane) and a picker reads the cache at each pick, so an instance that turns critical
or is deleted is never picked again once its event has been applied.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Callable, Iterator, Sequence
from typing import Literal

from minga.discovery._model import Health, Instance, WatchEvent
from minga.discovery._store import Snapshot
from minga.errors import DiscoveryError, NoInstanceError

Strategy = Literal["round_robin", "random", "p2c"]


class InstanceCache:
    """Instances by id, kept current by :meth:`apply`; :meth:`wait_for` wakes on every change.

    ``revision`` is the store revision of the last change applied (it may go back when a watch
    reopens on a store that lost its history); ``generation`` counts every change applied here
    and only grows, so a reader can tell that something changed since it last looked.
    """

    def __init__(self) -> None:
        self._instances: dict[str, Instance] = {}
        self.revision = 0
        self.generation = 0
        self._changed = asyncio.Event()

    def reset(self, snapshot: Snapshot) -> None:
        """Replace everything with ``snapshot`` (when a watch (re)opens)."""
        self._instances = {i.id: i for i in snapshot.instances}
        self.revision = snapshot.revision
        self._notify()

    def apply(self, event: WatchEvent) -> None:
        """Apply one watch event."""
        if event.kind == "put":
            self._instances[event.instance.id] = event.instance
        else:
            self._instances.pop(event.instance.id, None)
        self.revision = max(self.revision, event.revision)
        self._notify()

    def _notify(self) -> None:
        self.generation += 1
        # waiters hold the old event, which is now set; later waiters get a fresh one
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    def get(self, instance_id: str) -> Instance | None:
        return self._instances.get(instance_id)

    def instances(self, service: str | None = None) -> list[Instance]:
        """Every cached instance (of ``service``), sorted by id."""
        return sorted(
            (i for i in self._instances.values() if service is None or i.service == service),
            key=lambda i: i.id,
        )

    def services(self) -> list[str]:
        return sorted({i.service for i in self._instances.values()})

    def candidates(self, service: str) -> list[Instance]:
        """What pickers choose from: the passing instances, or the warning ones when none passes."""
        mine = self.instances(service)
        passing = [i for i in mine if i.health is Health.PASSING]
        return passing or [i for i in mine if i.health is Health.WARNING]

    async def wait_for(self, predicate: Callable[[InstanceCache], bool]) -> None:
        """Wait until ``predicate(cache)`` is true, woken by each change (bound it with ``asyncio.timeout``)."""
        while not predicate(self):
            await self._changed.wait()


class Picker:
    """Chooses one instance of a service from the cache; subclasses say how.

    Call :meth:`pick` for a fire-and-forget choice, or use ``with picker.request() as
    instance:`` so that pickers counting outstanding requests (:class:`PowerOfTwoChoices`)
    see when the request ends.
    """

    def __init__(self, cache: InstanceCache, service: str) -> None:
        self.cache = cache
        self.service = service

    def choose(self, candidates: Sequence[Instance]) -> Instance:
        raise NotImplementedError

    def pick(self) -> Instance:
        """One healthy instance; raises :class:`NoInstanceError` when there is none."""
        candidates = self.cache.candidates(self.service)
        if not candidates:
            raise NoInstanceError(self.service)
        return self.choose(candidates)

    @contextlib.contextmanager
    def request(self) -> Iterator[Instance]:
        """Pick, and count the instance as busy until the block ends."""
        instance = self.pick()
        self.started(instance.id)
        try:
            yield instance
        finally:
            self.finished(instance.id)

    def started(self, instance_id: str) -> None:
        """A request to ``instance_id`` began (only counted by pickers that use it)."""

    def finished(self, instance_id: str) -> None:
        """A request to ``instance_id`` ended."""


class RoundRobin(Picker):
    """Each healthy instance in turn (by id order), skipping those that left."""

    def __init__(self, cache: InstanceCache, service: str) -> None:
        super().__init__(cache, service)
        self._next = 0

    def choose(self, candidates: Sequence[Instance]) -> Instance:
        instance = candidates[self._next % len(candidates)]
        self._next = (self._next + 1) % (1 << 30)
        return instance


class RandomPicker(Picker):
    """A healthy instance chosen uniformly at random."""

    def __init__(self, cache: InstanceCache, service: str, *, rng: random.Random | None = None) -> None:
        super().__init__(cache, service)
        self._rng = rng or random.Random()

    def choose(self, candidates: Sequence[Instance]) -> Instance:
        return self._rng.choice(candidates)


class PowerOfTwoChoices(Picker):
    """Two healthy instances at random; the one with fewer outstanding requests wins.

    Outstanding requests are counted by :meth:`request` (or :meth:`started` /
    :meth:`finished`); :attr:`outstanding` shows the counts.
    """

    def __init__(self, cache: InstanceCache, service: str, *, rng: random.Random | None = None) -> None:
        super().__init__(cache, service)
        self._rng = rng or random.Random()
        self.outstanding: dict[str, int] = {}

    def choose(self, candidates: Sequence[Instance]) -> Instance:
        if len(candidates) == 1:
            return candidates[0]
        a, b = self._rng.sample(list(candidates), 2)
        return a if self.outstanding.get(a.id, 0) <= self.outstanding.get(b.id, 0) else b

    def started(self, instance_id: str) -> None:
        self.outstanding[instance_id] = self.outstanding.get(instance_id, 0) + 1

    def finished(self, instance_id: str) -> None:
        left = self.outstanding.get(instance_id, 0) - 1
        if left > 0:
            self.outstanding[instance_id] = left
        else:
            self.outstanding.pop(instance_id, None)


def make_picker(cache: InstanceCache, service: str, strategy: Strategy = "round_robin") -> Picker:
    """A picker by name: ``round_robin``, ``random`` or ``p2c`` (power of two choices)."""
    if strategy == "round_robin":
        return RoundRobin(cache, service)
    if strategy == "random":
        return RandomPicker(cache, service)
    if strategy == "p2c":
        return PowerOfTwoChoices(cache, service)
    raise DiscoveryError(f"unknown picker {strategy!r}: expected round_robin, random or p2c")

"""Where a client writes down what it created on a platform, the moment the platform answers.

Platforms have no idempotency key: the remote object itself (TikTok's publish id, Instagram's
container, YouTube's upload session and video) is the only handle on a post. A client saves it
before taking the next step, and every publish starts by reading it back, so a publisher that
was killed, or a request sent again, resumes that object or checks its state instead of
creating a second one (platforms.md §1.9, §2.7, §3.9, §4).

A journal holds one *generation* per remote object. When the platform gives up on one (FAILED,
EXPIRED, a session gone), `abandon` closes it and the next `save` opens a fresh generation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from contracts import PublishRequested, RemoteHandle

# What the last saved step was, in the order a publish goes through them.
INTENT = "intent"  # the create call is about to be sent; no answer stored yet
CREATED = "created"  # the platform answered with its id (and upload URL / session)
UPLOADED = "uploaded"  # every byte is on the platform
PUBLISHING = "publishing"  # the publish call is about to be sent (Instagram)
ACCEPTED = "accepted"  # handed to the poller: nothing left for the publisher to do
ABANDONED = "abandoned"  # the platform gave up on it: a new object is safe


@dataclass(frozen=True)
class Checkpoint:
    stage: str
    handle: RemoteHandle
    reason: str | None = None  # why it was abandoned


class Journal(Protocol):
    async def load(self) -> Checkpoint | None:
        """The latest generation (abandoned ones included), or None if nothing was created."""

    async def save(self, stage: str, handle: RemoteHandle) -> None:
        """Record `handle` at `stage` before the next step; durable when this returns."""

    async def abandon(self, reason: str) -> None:
        """Close the current generation: the platform will never publish it."""


@dataclass
class MemoryJournal:
    """A journal in memory: for tests, and for one-off publishes without a database."""

    generations: list[Checkpoint] = field(default_factory=list)

    async def load(self) -> Checkpoint | None:
        return self.generations[-1] if self.generations else None

    async def save(self, stage: str, handle: RemoteHandle) -> None:
        if self.generations and self.generations[-1].stage != ABANDONED:
            self.generations[-1] = Checkpoint(stage, handle)
        else:
            self.generations.append(Checkpoint(stage, handle))

    async def abandon(self, reason: str) -> None:
        if self.generations and self.generations[-1].stage != ABANDONED:
            self.generations[-1] = Checkpoint(ABANDONED, self.generations[-1].handle, reason)


async def resume_point(journal: Journal, request: PublishRequested) -> Checkpoint | None:
    """Where to pick up: the journal, else the handle the queue stored with the target.

    None means nothing live: create the remote object now.
    """
    checkpoint = await journal.load()
    if checkpoint is None and request.remote_handle is not None:
        return Checkpoint(ACCEPTED, request.remote_handle)
    if checkpoint is not None and checkpoint.stage == ABANDONED:
        return None
    return checkpoint


class LiveObjectWatch:
    """A journal that remembers the live remote object it last read or was given (one with an
    id, not abandoned since): a failure after it may have left a post on the platform."""

    def __init__(self, journal: Journal):
        self.journal = journal
        self.live: RemoteHandle | None = None

    async def load(self) -> Checkpoint | None:
        checkpoint = await self.journal.load()
        if checkpoint is not None and checkpoint.stage != ABANDONED and checkpoint.handle.id:
            self.live = checkpoint.handle
        return checkpoint

    async def save(self, stage: str, handle: RemoteHandle) -> None:
        if handle.id:  # before the save: one that raises still names what the platform made
            self.live = handle
        await self.journal.save(stage, handle)

    async def abandon(self, reason: str) -> None:
        await self.journal.abandon(reason)
        self.live = None

"""Topic names, and how many partitions each gets when the services create them."""

from __future__ import annotations

from ._common import Platform


class Topics:
    CONTENT_SUBMITTED = "content.submitted"
    CONTENT_REJECTED = "content.rejected"
    POST_PLANNED = "post.planned"
    PUBLISH_RESULT = "publish.result"
    STATUS_OBSERVED = "status.observed"
    ENGAGEMENT_OBSERVED = "engagement.observed"
    SLOT_CHANGED = "slot.changed"
    DEAD_LETTER = "dead-letter"
    ALERTS = "alerts"

    @staticmethod
    def publish_requested(platform: Platform | str) -> str:
        return f"publish.requested.{Platform(platform).value}"

    @staticmethod
    def status_requested(platform: Platform | str) -> str:
        return f"status.requested.{Platform(platform).value}"

    @classmethod
    def all(cls) -> list[str]:
        fixed = [
            cls.CONTENT_SUBMITTED,
            cls.CONTENT_REJECTED,
            cls.POST_PLANNED,
            cls.PUBLISH_RESULT,
            cls.STATUS_OBSERVED,
            cls.ENGAGEMENT_OBSERVED,
            cls.SLOT_CHANGED,
            cls.DEAD_LETTER,
            cls.ALERTS,
        ]
        per_platform = [f(p) for p in Platform for f in (cls.publish_requested, cls.status_requested)]
        return fixed + per_platform


def prefixed(topic: str, prefix: str) -> str:
    """Deployments and tests may run several isolated topic sets on one cluster."""
    return f"{prefix}{topic}" if prefix else topic

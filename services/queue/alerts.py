"""The alert a change raises, addressed to the notifier through the outbox."""

from __future__ import annotations

import uuid
from datetime import datetime

from contracts import AdminAlert, AlertKind, Platform, Topics
from services.runtime import Outgoing, trace_id_of

from .domain import Change
from .repository import DueTarget, LockedTarget

_SUMMARY = {
    AlertKind.ATTEMPTS_EXHAUSTED: "gave up after its retry budget",
    AlertKind.PUBLISH_FAILED: "was refused by the platform",
    AlertKind.QUOTA_BLOCKED: "has been waiting on a quota",
}


def alert_for(target: DueTarget | LockedTarget, change: Change, now: datetime,
              topic=lambda name: name) -> Outgoing:
    assert change.alert is not None
    state, error = change.state, change.error or {}
    kind = change.alert
    # derived from the failure, so a redelivered or replayed change is still one alert
    alert_id = uuid.uuid5(state.target_id, f"{kind.value}:{state.attempt}:{state.deferred_since}")
    alert = AdminAlert(
        alert_id=alert_id,
        kind=kind,
        reason=str(error.get("code") or kind.value)[:500],
        message=(f"{target.platform} target of post {target.upstream_id} for account "
                 f"{target.account_id} {_SUMMARY.get(kind, kind.value)}: "
                 f"{error.get('message') or 'no detail'}")[:4000],
        platform=Platform(target.platform),
        account_id=target.account_id,
        post_id=target.post_id,
        target_id=state.target_id,
        last_error=error or None,
        trace_id=trace_id_of(target.trace_context),
        raised_at=now,
    )
    return Outgoing.of(topic(Topics.ALERTS), state.target_id, alert, dict(target.trace_context))

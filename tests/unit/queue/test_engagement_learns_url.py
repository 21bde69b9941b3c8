"""A posted target without a URL (a TikTok post whose moderation outlasted the status check)
learns it from an engagement observation that found it: filled in, never replaced, the same
however often the observation is delivered."""

from dataclasses import replace
from datetime import timedelta

import engagement_reads
from contracts import EngagementFigures, ErrorClass, PublishError, RemoteHandle, StatusObserved
from engagement_reads import AGES, CADENCE, FIGURES, NOW
from services.queue.domain import Emit, TargetState, TargetStatus, on_engagement_due, on_engagement_observed

HANDLE = RemoteHandle(kind="tiktok.publish_id", id="v_pub_url~1",
                      extra={"privacy": "PUBLIC_TO_EVERYONE"}).to_wire()
FOUND = "https://www.tiktok.com/@a/video/7300000000000000001"


def posted(url: str | None = None, checks: int = 0) -> TargetState:
    state = engagement_reads.posted(checks, handle=HANDLE, url=url)
    return on_engagement_due(state, NOW + timedelta(seconds=AGES[checks]), CADENCE).state  # asked


def observed(state: TargetState, age: float = AGES[0], url: str | None = FOUND,
             figures: EngagementFigures | None = FIGURES, error: PublishError | None = None) -> StatusObserved:
    return engagement_reads.observed(state, age, figures, error, url=url)


AT = NOW + timedelta(hours=1)


def test_figures_read_by_an_address_the_target_lacked_fill_it_in():
    state = posted()
    change = on_engagement_observed(state, observed(state), AT, CADENCE)
    assert change.state.url == FOUND
    assert change.emit is Emit.ENGAGEMENT_OBSERVED and change.state.engagement_checks == 1, "the figures count too"


def test_an_address_the_target_has_is_never_replaced():
    state = posted(url="https://www.tiktok.com/@a/video/71")
    change = on_engagement_observed(state, observed(state), AT, CADENCE)
    assert change.state.url == "https://www.tiktok.com/@a/video/71"


def test_delivered_again_it_changes_nothing():
    state = posted()
    first = on_engagement_observed(state, observed(state), AT, CADENCE)
    message = observed(state)
    again = on_engagement_observed(first.state, message, AT, CADENCE)
    assert again is None, "the collection moved on: a repeat is late, and the address is already there"
    assert on_engagement_observed(first.state, replace_url(message, None), AT, CADENCE) is None


def replace_url(message: StatusObserved, url: str | None) -> StatusObserved:
    return message.model_copy(update={"url": url})


def test_a_late_answer_that_found_the_address_still_gives_it():
    state = posted(checks=1)  # the first collection is over; its answer comes late
    change = on_engagement_observed(state, observed(state, age=AGES[0]), AT, CADENCE)
    assert change is not None and change.state.url == FOUND
    assert change.emit is None, "its figures are too late to count"
    assert (change.state.engagement_checks, change.state.due_at) == (state.engagement_checks, state.due_at)
    assert change.state.version == state.version + 1
    assert on_engagement_observed(change.state, observed(state, age=AGES[0]), AT, CADENCE) is None


def test_a_read_still_waiting_for_moderation_leaves_the_address_missing_and_retries():
    state = posted()
    error = PublishError(error_class=ErrorClass.RETRYABLE, code="in_moderation", message="no public id yet")
    change = on_engagement_observed(state, observed(state, url=None, figures=None, error=error), AT, CADENCE)
    assert change.state.url is None and change.state.engagement_checks == 0
    assert change.state.due_at == AT + timedelta(seconds=60)


def test_only_a_posted_target_learns_it():
    state = replace(posted(), status=TargetStatus.FAILED)
    assert on_engagement_observed(state, observed(state), AT, CADENCE) is None

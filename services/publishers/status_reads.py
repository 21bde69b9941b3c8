"""What a status read that failed says of a post: nothing. Shared by the status poller and
`autopost publish-once`, which must not disagree on when a post has failed."""

from __future__ import annotations

from contracts import ErrorClass, ObservedState

from .platforms import PlatformError, StatusReport


def read_refused_for_good(error: PlatformError) -> bool:
    """A read the platform will not answer however often it is asked (a 403 on the read, a
    proxy's page, a changed API's 400): looking again cannot tell more."""
    return error.error_class is ErrorClass.PERMANENT


def status_of_failed_read(error: PlatformError) -> StatusReport:
    """A failed look is not a failed post: only a state the platform reports (a StatusReport
    FAILED from the client) fails a target. A read refused for good is `status_unreadable`;
    any other failure (transient, rate-limited, quota, auth) leaves the status unknown for now.
    Either way the post is still processing as far as we know, and a deadline bounds it."""
    if read_refused_for_good(error):
        return StatusReport(ObservedState.PROCESSING, detail=f"status_unreadable: {error.code}: {error.message}")
    return StatusReport(ObservedState.PROCESSING, detail=f"{error.code}: status unknown")

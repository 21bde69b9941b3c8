"""One rule for a status read that failed, shared by the poller and `publish-once`."""

from __future__ import annotations

import pytest

from contracts import ErrorClass, ObservedState
from services.publishers.platforms import PlatformError
from services.publishers.status_reads import read_refused_for_good, status_of_failed_read


def test_a_read_refused_for_good_is_unreadable_not_failed():
    error = PlatformError(ErrorClass.PERMANENT, "forbidden", "no")
    report = status_of_failed_read(error)
    assert read_refused_for_good(error)
    assert (report.state, report.error, report.detail) == (ObservedState.PROCESSING, None,
                                                           "status_unreadable: forbidden: no")


@pytest.mark.parametrize("error_class", [c for c in ErrorClass if c is not ErrorClass.PERMANENT])
def test_any_other_failed_read_leaves_the_status_unknown(error_class):
    error = PlatformError(error_class, "later", "try again")
    report = status_of_failed_read(error)
    assert not read_refused_for_good(error)
    assert (report.state, report.error, report.detail) == (ObservedState.PROCESSING, None, "later: status unknown")

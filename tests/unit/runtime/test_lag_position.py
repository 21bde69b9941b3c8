"""A partition's lag counts from where the group resumes, not from a committed offset the log no
longer holds."""

import pytest

from services.runtime._lag import partition_lag


@pytest.mark.parametrize("high_watermark, committed, log_start, expected", [
    (30, 12, 0, 18),  # the usual: what is past the commit
    (30, 30, 0, 0),  # caught up
    (30, -1, 0, 30),  # nothing committed: from the log start
    (30, -1, 20, 10),
    (30, 5, 20, 10),  # records up to 20 deleted by retention: resumes at 20, not 5
    (0, 12, 0, 0),  # a recreated, empty topic
    (5, 12, 0, 5),  # recreated with fewer records than were read: none of them read yet
    (8, 12, 3, 5),  # the same, a log that does not start at 0
    (12, 12, 0, 0),  # at the end: not beyond it
    (13, 12, 0, 1),
])
def test_lag_counts_from_the_commit_or_the_log_start_whichever_is_later(high_watermark, committed, log_start,
                                                                         expected):
    assert partition_lag(high_watermark, committed, log_start) == expected

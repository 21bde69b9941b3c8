"""How good each local hour of the day is, from the history's best times."""

from __future__ import annotations

from contracts import HistoricalPerformance

# Hours the history never mentions score this share of the mean reported rate: we know nothing
# against them, but the hours the history does report earned their place and should win.
UNKNOWN_HOUR_DISCOUNT = 0.8


def hour_scores(history: HistoricalPerformance) -> list[float]:
    """The expected engagement of posting at each local hour 0-23.

    An hour reported more than once scores the mean of its reports. An hour never reported
    scores `UNKNOWN_HOUR_DISCOUNT` x the mean of all reported rates. With no history every hour
    scores 0.0, so the earliest candidate wins.
    """
    best_times = history.best_times
    if not best_times:
        return [0.0] * 24
    totals = [0.0] * 24
    reports = [0] * 24
    for best in best_times:
        totals[best.hour] += best.engagement_rate
        reports[best.hour] += 1
    unknown = UNKNOWN_HOUR_DISCOUNT * sum(totals) / len(best_times)
    return [totals[h] / reports[h] if reports[h] else unknown for h in range(24)]

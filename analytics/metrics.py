"""What the rollups count: the metric names, and the schedule lag's histogram buckets.

A status metric counts the times messages reached that status (a retried message is `sending` once per attempt);
`opened` and `clicked` count messages (their first open or click), so rates are per message; `bounced`,
`complained` and `opted_out` count the providers' reports, and `opted_out` also the STOP replies and the
unsubscribe page's opt-outs (once per message), each once.
"""

from __future__ import annotations

from deliveries.models import Status

STATUS_METRICS: tuple[str, ...] = tuple(Status.values)
EVENT_METRICS: tuple[str, ...] = ("bounced", "opened", "clicked", "opted_out", "complained")
METRICS: tuple[str, ...] = STATUS_METRICS + EVENT_METRICS

# The schedule lag (reaching `sent` minus send_at, or created_at when there is none) is counted per minute in
# buckets with these upper bounds in seconds, the last one open; percentiles come from the buckets, never a scan.
LAG_BUCKET_BOUNDS: tuple[float, ...] = (0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, float("inf"))
LAG_BUCKET_METRICS: tuple[str, ...] = tuple(f"lag_le_{i:02d}" for i in range(len(LAG_BUCKET_BOUNDS)))


def lag_bucket_metric(seconds: float) -> str:
    """The minute rollup's metric name of the histogram bucket that holds a lag of `seconds`."""
    for metric, bound in zip(LAG_BUCKET_METRICS, LAG_BUCKET_BOUNDS, strict=True):
        if seconds <= bound:
            return metric
    return LAG_BUCKET_METRICS[-1]

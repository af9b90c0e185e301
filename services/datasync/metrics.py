"""Prometheus metrics shared by every process. Names follow `datasync_<part>_<what>_<unit>`."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

HTTP_REQUESTS = Counter(
    "datasync_http_requests_total",
    "HTTP requests answered, by route template and status code.",
    ["method", "route", "status"],
)
HTTP_DURATION = Histogram(
    "datasync_http_request_duration_seconds",
    "Time from request to answer, by route template.",
    ["method", "route"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
GROUP_COMMIT_BATCH = Histogram(
    "datasync_group_commit_batch_items",
    "Items written by one shared transaction of a group-commit writer, by writer.",
    ["writer"],
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
)
OUTBOX_PUBLISHED = Counter(
    "datasync_outbox_published_total",
    "Outbox rows published to Kafka and removed from the outbox, by topic.",
    ["topic"],
)
OUTBOX_BACKLOG = Gauge(
    "datasync_outbox_backlog_rows",
    "Outbox rows not yet published, as last seen by the relay.",
)
OUTBOX_OLDEST_AGE = Gauge(
    "datasync_outbox_oldest_age_seconds",
    "Age of the oldest row not yet published, as last seen by the relay.",
)
OUTBOX_LEADER = Gauge(
    "datasync_outbox_relay_active",
    "1 while this relay holds the lock that makes it the active one, 0 on standby.",
)
CONSUMER_RECORDS = Counter(
    "datasync_consumer_records_total",
    "Records consumed, by topic and outcome (applied, duplicate, dead_lettered).",
    ["topic", "outcome"],
)
CONSUMER_RETRIES = Counter(
    "datasync_consumer_retries_total",
    "Attempts to handle a record that failed and were retried, by topic.",
    ["topic"],
)
CONSUMER_BATCH_DURATION = Histogram(
    "datasync_consumer_batch_duration_seconds",
    "Time to apply one batch of records and commit it.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
CONSUMER_LAG = Gauge(
    "datasync_consumer_lag_records",
    "Records in a partition not yet consumed by this consumer, as last seen by it.",
    ["topic", "partition"],
)

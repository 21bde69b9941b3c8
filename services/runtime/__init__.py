"""What every service is built from: settings, telemetry, broker, database, health."""

from . import _metrics as metrics
from ._background import Background, task_alive, wait_or_timeout
from ._broker import ConsumerWatch, build_broker, consumers_of, subscribe_batches
from ._coalesce import Coalesced
from ._db import close_database, create_pool, database_ready, instrument_asyncpg, open_database
from ._failures import is_transient
from ._health import AsgiServer, health_app, run_checks
from ._cookieless import CookielessClient, cookieless_transport
from ._http_tracing import TracedTransport
from ._lag import LagMonitor, LagProbe, measure_lag
from ._logging import configure_logging, scrub
from ._migrate import apply_migrations, migration_files
from ._messaging import (
    TRUNCATED_KEY_BYTES,
    Outgoing,
    Record,
    dead_letter_for,
    dead_letter_of,
    group_by_key,
    map_by_key,
    payload_digest,
    publish_all,
)
from ._retry_after import retry_after_seconds
from ._service import Service, ServiceContext, ServiceHost, current_trace_id, run_until_signalled
from ._settings import (
    SANDBOX_OAUTH_SECRET,
    AccountSettings,
    KafkaSettings,
    NotifierSettings,
    OAuthApp,
    PlannerSettings,
    PlatformSettings,
    QueueSettings,
    QuotaSettings,
    Settings,
)
from ._telemetry import (
    build_tracer_provider,
    context_from,
    current_carrier,
    headers_to_dict,
    trace_carrier,
    trace_id_of,
)
from ._topics import create_missing_topics, ensure_topics, service_topics, topic_partitions

__all__ = [
    "Background",
    "SANDBOX_OAUTH_SECRET",
    "AccountSettings",
    "AsgiServer",
    "Coalesced",
    "CookielessClient",
    "ConsumerWatch",
    "LagMonitor",
    "LagProbe",
    "KafkaSettings",
    "NotifierSettings",
    "OAuthApp",
    "Outgoing",
    "PlannerSettings",
    "PlatformSettings",
    "QueueSettings",
    "QuotaSettings",
    "Record",
    "Service",
    "ServiceContext",
    "ServiceHost",
    "TracedTransport",
    "Settings",
    "apply_migrations",
    "build_broker",
    "build_tracer_provider",
    "configure_logging",
    "consumers_of",
    "context_from",
    "cookieless_transport",
    "create_missing_topics",
    "create_pool",
    "current_carrier",
    "current_trace_id",
    "close_database",
    "database_ready",
    "dead_letter_for",
    "dead_letter_of",
    "ensure_topics",
    "group_by_key",
    "headers_to_dict",
    "health_app",
    "instrument_asyncpg",
    "is_transient",
    "map_by_key",
    "payload_digest",
    "TRUNCATED_KEY_BYTES",
    "measure_lag",
    "metrics",
    "task_alive",
    "migration_files",
    "open_database",
    "publish_all",
    "retry_after_seconds",
    "run_checks",
    "run_until_signalled",
    "scrub",
    "service_topics",
    "topic_partitions",
    "subscribe_batches",
    "trace_carrier",
    "trace_id_of",
    "wait_or_timeout",
]

"""Every knob a service reads, from the environment, in one frozen object."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar
from urllib.parse import urlsplit

from contracts import Platform

REAL_API_BASES = {
    Platform.TIKTOK: "https://open.tiktokapis.com",
    Platform.INSTAGRAM: "https://graph.instagram.com",  # Instagram Login (platforms.md §2.1)
    Platform.YOUTUBE: "https://www.googleapis.com",
}

T = TypeVar("T")


class SettingError(ValueError):
    """An environment variable set to a value it does not take; says which, and what it takes."""


_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
LOG_FORMATS = ("json", "text")


def _env_value(name: str) -> str | None:
    """The variable's value, stripped; None when it is unset or empty (its default then)."""
    value = os.environ.get(name, "").strip()
    return value or None


def _parse(name: str, value: str, kind: type, expected: str, part: str | None = None) -> Any:
    """`value` (or the `part` of it given) read as `kind`, or a SettingError naming `name`."""
    try:
        return kind(value if part is None else part.strip())
    except ValueError:
        raise SettingError(f"{name}={value!r}: expected {expected}") from None


def _env_int(name: str, default: T) -> int | T:
    value = _env_value(name)
    return default if value is None else _parse(name, value, int, "a whole number, e.g. 10")


def _env_float(name: str, default: T) -> float | T:
    value = _env_value(name)
    return default if value is None else _parse(name, value, float, "a number, e.g. 300 (no units)")


def _env_floats(name: str, default: tuple[float, ...]) -> tuple[float, ...]:
    """Comma-separated numbers; set but empty means none."""
    value = os.environ.get(name)
    if value is None:
        return default
    return tuple(_parse(name, value, float, "comma-separated numbers, e.g. 3600,86400", part)
                 for part in value.split(",") if part.strip())


def _env_bool(name: str, default: bool) -> bool:
    """1/true/yes/on or 0/false/no/off, any case; unset or empty: `default`."""
    value = _env_value(name)
    if value is None:
        return default
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise SettingError(f"{name}={value!r}: expected one of 1, true, yes, on or 0, false, no, off")


def _env_choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    """One of `choices`, any case (returned as `choices` spells it); unset or empty: `default`."""
    value = _env_value(name)
    if value is None:
        return default
    for choice in choices:
        if value.lower() == choice.lower():
            return choice
    raise SettingError(f"{name}={value!r}: expected one of {', '.join(choices)}")


@dataclass(frozen=True)
class KafkaSettings:
    bootstrap_servers: str = "127.0.0.1:9092"
    topic_prefix: str = ""
    partitions: int = 6
    # of topics the services create when missing; Strimzi's KafkaTopics (3) are made first in k8s
    replication_factor: int = 1
    enable_idempotence: bool = False  # Tansu refuses idempotent producers; Apache Kafka may turn it on
    # Apache Kafka's group.min.session.timeout.ms is 6 s; the local broker takes shorter ones
    session_timeout_ms: int = 10_000
    heartbeat_interval_ms: int = 3_000
    max_poll_records: int = 500
    # a batch that runs longer than this loses the consumer its partitions (and another
    # replica reads the batch again): publishers waiting on an account's rate cap need more
    max_poll_interval_ms: int = 300_000

    @classmethod
    def from_env(cls) -> "KafkaSettings":
        return cls(
            bootstrap_servers=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", cls.bootstrap_servers),
            topic_prefix=os.environ.get("AUTOPOST_TOPIC_PREFIX", ""),
            partitions=_env_int("AUTOPOST_TOPIC_PARTITIONS", cls.partitions),
            replication_factor=_env_int("AUTOPOST_TOPIC_REPLICATION_FACTOR", cls.replication_factor),
            enable_idempotence=_env_bool("KAFKA_ENABLE_IDEMPOTENCE", cls.enable_idempotence),
            session_timeout_ms=_env_int("KAFKA_SESSION_TIMEOUT_MS", cls.session_timeout_ms),
            heartbeat_interval_ms=_env_int("KAFKA_HEARTBEAT_INTERVAL_MS", cls.heartbeat_interval_ms),
            max_poll_records=_env_int("KAFKA_MAX_POLL_RECORDS", cls.max_poll_records),
            max_poll_interval_ms=_env_int("KAFKA_MAX_POLL_INTERVAL_MS", cls.max_poll_interval_ms),
        )


@dataclass(frozen=True)
class QueueSettings:
    dispatch_batch: int = 500
    lease_seconds: float = 600.0
    # the most publish requests out at once per platform (targets publishing); 0: no limit.
    # Below it, each platform gets what its publishers finish in a quarter of a lease (measured):
    # a request that waits longer than its lease in their backlog is dispatched again
    max_in_flight: int = 500
    status_first_check_seconds: float = 1.0
    status_max_interval_seconds: float = 60.0
    status_lease_seconds: float = 120.0  # a status check not answered by then is asked again
    max_idle_wait_seconds: float = 30.0
    # None keeps each platform's own budget (services/queue/domain/_policy.py)
    retry_max_attempts: int | None = None
    retry_budget_seconds: float | None = None
    quota_alert_after_seconds: float | None = None  # a wait on a quota this long alerts once
    # ages after publication at which a posted target's engagement is collected; () for none
    engagement_ages_seconds: tuple[float, ...] = (3600.0, 86_400.0)

    @classmethod
    def from_env(cls) -> "QueueSettings":
        return cls(
            retry_max_attempts=_env_int("AUTOPOST_RETRY_MAX_ATTEMPTS", None),
            retry_budget_seconds=_env_float("AUTOPOST_RETRY_BUDGET_SECONDS", None),
            quota_alert_after_seconds=_env_float("AUTOPOST_QUOTA_ALERT_AFTER_SECONDS", 0) or None,
            engagement_ages_seconds=_env_floats("AUTOPOST_ENGAGEMENT_AGES_SECONDS",
                                                cls.engagement_ages_seconds),
            dispatch_batch=_env_int("AUTOPOST_DISPATCH_BATCH", cls.dispatch_batch),
            lease_seconds=_env_float("AUTOPOST_LEASE_SECONDS", cls.lease_seconds),
            max_in_flight=_env_int("AUTOPOST_DISPATCH_MAX_IN_FLIGHT", cls.max_in_flight),
            status_first_check_seconds=_env_float(
                "AUTOPOST_STATUS_FIRST_CHECK_SECONDS", cls.status_first_check_seconds),
            status_max_interval_seconds=_env_float(
                "AUTOPOST_STATUS_MAX_INTERVAL_SECONDS", cls.status_max_interval_seconds),
            status_lease_seconds=_env_float("AUTOPOST_STATUS_LEASE_SECONDS", cls.status_lease_seconds),
        )


@dataclass(frozen=True)
class NotifierSettings:
    # a JSON array of {"name", "url", "format": "json" | "slack"}, or comma-separated URLs;
    # a URL written "slack+https://..." gets a Slack-compatible body
    webhooks: str = ""
    jaeger_url: str | None = None  # the Jaeger UI's address, for a link to the post's trace
    max_delivery_attempts: int = 12
    delivery_timeout_seconds: float = 10.0
    retry_base_seconds: float = 5.0  # the receiver may be down a while: up to 30 min apart

    @classmethod
    def from_env(cls) -> "NotifierSettings":
        return cls(
            webhooks=os.environ.get("AUTOPOST_ALERT_WEBHOOKS", ""),
            jaeger_url=os.environ.get("AUTOPOST_JAEGER_URL") or None,
            max_delivery_attempts=_env_int("AUTOPOST_ALERT_MAX_ATTEMPTS", cls.max_delivery_attempts),
        )


@dataclass(frozen=True)
class OAuthApp:
    """A registered OAuth app: client id (TikTok: client key), secret, the exact redirect URI."""

    client_id: str
    client_secret: str = field(repr=False)
    redirect_uri: str


# The sandbox's token endpoints take this secret (any client id); never a real app's.
SANDBOX_OAUTH_SECRET = "sandbox-secret"
_SANDBOX_REDIRECT = "https://localhost/autopost/oauth/callback"
_OAUTH_ENV = {  # platform: (client id variable, secret variable)
    Platform.TIKTOK: ("TIKTOK_CLIENT_KEY", "TIKTOK_CLIENT_SECRET"),
    Platform.INSTAGRAM: ("INSTAGRAM_CLIENT_ID", "INSTAGRAM_CLIENT_SECRET"),
    Platform.YOUTUBE: ("GOOGLE_CLIENT_ID", "GOOGLE_CLIENT_SECRET"),
}


@dataclass(frozen=True)
class AccountSettings:
    """Credential encryption keys (`id:base64key`, the first seals) and the OAuth apps."""

    credential_keys: str = field(default="", repr=False)
    oauth_apps: dict[Platform, OAuthApp] = field(default_factory=dict)
    # each publisher looks this often for idle accounts whose tokens need a refresh (0: never)
    keep_alive_interval_seconds: float = 3600.0

    @classmethod
    def from_env(cls, sandbox_url: str | None) -> "AccountSettings":
        return cls(credential_keys=_credential_keys_from_env(), oauth_apps=_oauth_apps_from_env(sandbox_url),
                   keep_alive_interval_seconds=_env_float("AUTOPOST_TOKEN_KEEPALIVE_SECONDS",
                                                          cls.keep_alive_interval_seconds))

    @classmethod
    def for_sandbox(cls, credential_keys: str) -> "AccountSettings":
        return cls(credential_keys, _oauth_apps_from_env("sandbox"))


def _credential_keys_from_env() -> str:
    """AUTOPOST_CREDENTIAL_KEYS, or the contents of the (mounted secret) file
    AUTOPOST_CREDENTIAL_KEYS_FILE names; parsed and checked by `services.accounts.Keyring`."""
    spec, path = os.environ.get("AUTOPOST_CREDENTIAL_KEYS", ""), os.environ.get("AUTOPOST_CREDENTIAL_KEYS_FILE", "")
    if spec and path:
        raise ValueError("set AUTOPOST_CREDENTIAL_KEYS or AUTOPOST_CREDENTIAL_KEYS_FILE, not both")
    if path:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    return spec


def _oauth_apps_from_env(sandbox_url: str | None, environ: dict[str, str] | None = None
                         ) -> dict[Platform, OAuthApp]:
    """`<P>_CLIENT_ID`/`_SECRET` and `AUTOPOST_OAUTH_REDIRECT_URI` (or `<P>_REDIRECT_URI`) for the
    real platforms; against the sandbox always the sandbox's apps, so no real secret goes there."""
    environ = dict(os.environ) if environ is None else environ
    apps = {}
    for platform, (id_name, secret_name) in _OAUTH_ENV.items():
        if sandbox_url:
            apps[platform] = OAuthApp(f"autopost-sandbox-{platform.value}", SANDBOX_OAUTH_SECRET, _SANDBOX_REDIRECT)
            continue
        client_id, secret = environ.get(id_name, ""), environ.get(secret_name, "")
        redirect = environ.get(f"{platform.value.upper()}_REDIRECT_URI") or environ.get(
            "AUTOPOST_OAUTH_REDIRECT_URI", "")
        if client_id and secret:
            apps[platform] = OAuthApp(client_id, secret, redirect)
    return apps


@dataclass(frozen=True)
class QuotaSettings:
    """Daily platform quotas the ledger enforces (raise them after a quota extension)."""

    youtube_daily_units: int = 10_000  # per project, every method but videos.insert
    youtube_daily_uploads: int = 100  # per project, videos.insert's own bucket since 2026-06-01
    tiktok_daily_posts: int = 15  # Direct Posts per creator per rolling 24 h
    instagram_daily_publishes: int = 50  # per account per rolling 24 h, until the API says otherwise

    @classmethod
    def from_env(cls) -> "QuotaSettings":
        return cls(
            youtube_daily_units=_env_int("AUTOPOST_YOUTUBE_DAILY_UNITS", cls.youtube_daily_units),
            youtube_daily_uploads=_env_int("AUTOPOST_YOUTUBE_DAILY_UPLOADS", cls.youtube_daily_uploads),
            tiktok_daily_posts=_env_int("AUTOPOST_TIKTOK_DAILY_POSTS", cls.tiktok_daily_posts),
            instagram_daily_publishes=_env_int("AUTOPOST_INSTAGRAM_DAILY_PUBLISHES",
                                               cls.instagram_daily_publishes),
        )


def _env_list(name: str) -> tuple[str, ...] | None:
    value = os.environ.get(name)
    return tuple(v.strip() for v in value.split(",") if v.strip()) if value is not None else None


@dataclass(frozen=True)
class PlatformSettings:
    """How publishers and the poller talk to the platforms and read media."""

    timeout_seconds: float = 30.0  # per platform request (read and connect)
    # the sandbox mode: media over plain http and from loopback addresses (the local fakes)
    media_allow_loopback: bool = False
    media_roots: tuple[str, ...] = ()  # local media files only below these folders
    # hosts whose addresses the media guard does not check (in the sandbox mode: the sandbox)
    media_trusted_hosts: tuple[str, ...] = ()
    media_max_bytes: int = 10 * 1024 ** 3
    claim_seconds: float = 60.0  # a publisher's claim on a target, renewed while it works
    tiktok_pull_prefixes: tuple[str, ...] | None = None  # verified URL prefixes; None: pull all
    tiktok_unaudited: bool = False  # unaudited TikTok clients may post SELF_ONLY only
    tiktok_pull_inits_at_once: int = 8  # journalled pull inits awaiting their answer (see _tiktok.py)
    tiktok_uploads_at_once: int = 2  # chunked uploads holding their chunk buffer at once (see _tiktok.py)
    youtube_privacy: str = "public"
    youtube_schedule_lead_seconds: float = 900.0  # publishAt when the slot is this far ahead
    youtube_uploads_at_once: int = 4  # uploads holding their chunk buffer at once (see _youtube.py)
    instagram_poll_timeout_seconds: float = 30.0
    instagram_container_recheck_seconds: float = 60.0  # a container still processing, looked at again

    @classmethod
    def from_env(cls, *, sandbox_url: str | None = None) -> "PlatformSettings":
        roots = os.environ.get("AUTOPOST_MEDIA_ROOTS", "")
        sandbox_mode = _env_bool("AUTOPOST_MEDIA_ALLOW_LOOPBACK", sandbox_url is not None)
        trusted = _env_list("AUTOPOST_MEDIA_TRUSTED_HOSTS") or ()
        if sandbox_mode and sandbox_url:  # the sandbox's media host, wherever its network is
            trusted += (urlsplit(sandbox_url).hostname or "",)
        return cls(
            timeout_seconds=_env_float("AUTOPOST_PLATFORM_TIMEOUT_SECONDS", cls.timeout_seconds),
            media_allow_loopback=sandbox_mode,
            media_roots=tuple(r for r in roots.split(os.pathsep) if r),
            media_trusted_hosts=tuple(h for h in trusted if h),
            media_max_bytes=_env_int("AUTOPOST_MEDIA_MAX_BYTES", cls.media_max_bytes),
            claim_seconds=_env_float("AUTOPOST_PUBLISH_CLAIM_SECONDS", cls.claim_seconds),
            tiktok_pull_prefixes=_env_list("AUTOPOST_TIKTOK_PULL_PREFIXES"),
            tiktok_unaudited=_env_bool("AUTOPOST_TIKTOK_UNAUDITED", False),
            tiktok_pull_inits_at_once=max(1, _env_int("AUTOPOST_TIKTOK_PULL_INITS_AT_ONCE",
                                                      cls.tiktok_pull_inits_at_once)),
            tiktok_uploads_at_once=max(1, _env_int("AUTOPOST_TIKTOK_UPLOADS_AT_ONCE",
                                                   cls.tiktok_uploads_at_once)),
            youtube_privacy=os.environ.get("AUTOPOST_YOUTUBE_PRIVACY", cls.youtube_privacy),
            youtube_schedule_lead_seconds=_env_float("AUTOPOST_YOUTUBE_SCHEDULE_LEAD_SECONDS",
                                                     cls.youtube_schedule_lead_seconds),
            youtube_uploads_at_once=max(1, _env_int("AUTOPOST_YOUTUBE_UPLOADS_AT_ONCE",
                                                    cls.youtube_uploads_at_once)),
            instagram_poll_timeout_seconds=_env_float("AUTOPOST_INSTAGRAM_POLL_TIMEOUT_SECONDS",
                                                      cls.instagram_poll_timeout_seconds),
            instagram_container_recheck_seconds=_env_float("AUTOPOST_INSTAGRAM_CONTAINER_RECHECK_SECONDS",
                                                           cls.instagram_container_recheck_seconds),
        )


@dataclass(frozen=True)
class PlannerSettings:
    strategy: str = "learned"  # learned | heuristic (the original generateOptimalSchedule)
    exploration: str = "ucb"  # ucb | thompson | greedy
    # most expected engagement one post of a new account may give up to explore (it fades
    # as the account's readings accumulate: ExplorationSettings.decay_readings)
    exploration_budget: float = 0.5
    # how long an account's readings are reused before they are read again from Postgres
    # (engagement consumed by this replica refreshes them at once)
    refresh_seconds: float = 60.0
    readings_days: float = 182.0  # how far back readings are read
    min_spacing_seconds: float | None = None  # None: each platform's default (2 h)
    daily_caps: tuple[tuple[str, int], ...] = ()  # per platform, over the defaults
    # a post.planned whose post the queue has not stored after this long is sent again (then
    # after twice as long, ...); after resend_max sends it is dead-lettered
    resend_after_seconds: float = 120.0
    resend_max: int = 8
    recovery_interval_seconds: float = 15.0

    @classmethod
    def from_env(cls) -> "PlannerSettings":
        caps = os.environ.get("AUTOPOST_PLANNER_DAILY_CAPS", "")  # e.g. "tiktok=4,instagram=3"
        return cls(
            strategy=os.environ.get("AUTOPOST_PLANNER_STRATEGY", cls.strategy),
            exploration=os.environ.get("AUTOPOST_PLANNER_EXPLORATION", cls.exploration),
            exploration_budget=_env_float("AUTOPOST_PLANNER_EXPLORATION_BUDGET", cls.exploration_budget),
            refresh_seconds=_env_float("AUTOPOST_PLANNER_REFRESH_SECONDS", cls.refresh_seconds),
            resend_after_seconds=_env_float("AUTOPOST_PLANNER_RESEND_AFTER_SECONDS", cls.resend_after_seconds),
            resend_max=_env_int("AUTOPOST_PLANNER_RESEND_MAX", cls.resend_max),
            recovery_interval_seconds=_env_float("AUTOPOST_PLANNER_RECOVERY_INTERVAL_SECONDS",
                                                 cls.recovery_interval_seconds),
            min_spacing_seconds=_env_float("AUTOPOST_PLANNER_MIN_SPACING_SECONDS", None),
            daily_caps=tuple((name.strip(), _parse("AUTOPOST_PLANNER_DAILY_CAPS", caps, int,
                                                   "platform=count pairs, e.g. tiktok=4,instagram=3", cap))
                             for name, _, cap in
                             (part.partition("=") for part in caps.split(",") if part.strip())),
        )


@dataclass(frozen=True)
class Settings:
    kafka: KafkaSettings = field(default_factory=KafkaSettings)
    queue: QueueSettings = field(default_factory=QueueSettings)
    notifier: NotifierSettings = field(default_factory=NotifierSettings)
    accounts: AccountSettings = field(default_factory=AccountSettings)
    quotas: QuotaSettings = field(default_factory=QuotaSettings)
    planner: PlannerSettings = field(default_factory=PlannerSettings)
    database_url: str = "postgresql://postgres@127.0.0.1:5432/test"
    http_host: str = "0.0.0.0"
    http_port: int = 8080  # /livez /readyz /metrics; 0 = none
    sandbox_url: str | None = None
    api_bases: dict[Platform, str] = field(default_factory=lambda: dict(REAL_API_BASES))
    publisher_concurrency: int = 64
    log_level: str = "INFO"
    log_format: str = "json"  # or "text" (the local stack)
    # consumer lag is measured every this many seconds (0: never); a consumer with records
    # waiting and no batch completed for `stall_seconds` makes the service unready
    lag_interval_seconds: float = 15.0
    stall_seconds: float = 300.0
    # the queue computes its length from Postgres every this many seconds (0: never)
    stats_interval_seconds: float = 15.0
    # per-account publish caps overriding the platforms' figures ("calls/seconds"; benchmarks)
    publish_rates: dict[Platform, tuple[int, float]] = field(default_factory=dict)
    platforms: PlatformSettings = field(default_factory=PlatformSettings)

    @classmethod
    def from_env(cls, **overrides: Any) -> "Settings":
        sandbox = os.environ.get("AUTOPOST_SANDBOX_URL") or None
        settings = cls(
            kafka=KafkaSettings.from_env(),
            queue=QueueSettings.from_env(),
            notifier=NotifierSettings.from_env(),
            accounts=AccountSettings.from_env(sandbox),
            quotas=QuotaSettings.from_env(),
            planner=PlannerSettings.from_env(),
            database_url=os.environ.get("DATABASE_URL", cls.database_url),
            http_port=_env_int("AUTOPOST_HTTP_PORT", cls.http_port),
            sandbox_url=sandbox,
            api_bases=api_bases_from_env(sandbox),
            publisher_concurrency=_env_int("AUTOPOST_PUBLISHER_CONCURRENCY", cls.publisher_concurrency),
            log_level=_env_choice("AUTOPOST_LOG_LEVEL", cls.log_level, LOG_LEVELS),
            log_format=_env_choice("AUTOPOST_LOG_FORMAT", cls.log_format, LOG_FORMATS),
            lag_interval_seconds=_env_float("AUTOPOST_LAG_INTERVAL_SECONDS", cls.lag_interval_seconds),
            stall_seconds=_env_float("AUTOPOST_STALL_SECONDS", cls.stall_seconds),
            stats_interval_seconds=_env_float("AUTOPOST_STATS_INTERVAL_SECONDS", cls.stats_interval_seconds),
            publish_rates=publish_rates_from_env(),
            platforms=PlatformSettings.from_env(sandbox_url=sandbox),
        )
        return replace(settings, **overrides)

    def topic(self, name: str) -> str:
        prefix = self.kafka.topic_prefix
        return f"{prefix}{name}" if prefix else name


def api_bases_from_env(sandbox_url: str | None) -> dict[Platform, str]:
    """The sandbox serves every platform under its own path; explicit bases win over it."""
    bases = {}
    for platform, real in REAL_API_BASES.items():
        default = f"{sandbox_url.rstrip('/')}/{platform.value}" if sandbox_url else real
        bases[platform] = os.environ.get(f"{platform.value.upper()}_API_BASE", default)
    return bases


def publish_rates_from_env() -> dict[Platform, tuple[int, float]]:
    """`AUTOPOST_PUBLISH_RATE_TIKTOK=6/60`: at most 6 publishes per 60 s per account."""
    rates = {}
    for platform in Platform:
        value = os.environ.get(f"AUTOPOST_PUBLISH_RATE_{platform.value.upper()}")
        if value:
            name, expected = f"AUTOPOST_PUBLISH_RATE_{platform.value.upper()}", "calls/seconds, e.g. 6/60"
            calls, _, seconds = value.partition("/")
            rates[platform] = (_parse(name, value, int, expected, calls), _parse(name, value, float, expected, seconds))
    return rates

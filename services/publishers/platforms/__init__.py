"""One httpx client per platform behind one interface (`PlatformClient`).

    client = build_client(Platform.TIKTOK, http, "http://localhost:8080/tiktok",
                          limits=EndpointLimits.for_platform(Platform.TIKTOK))
    outcome = await client.publish(request, token, journal)   # Accepted | Published
    report = await client.check_status(outcome.handle, token, account_id)

Every failure is a `PlatformError` classified retryable / rate_limited / quota / auth /
permanent by the platform's own error code (see /work/shared/platforms.md). Every remote object
is written to the `Journal` the moment the platform returns it; `publish` starts by reading it
back, so a repeated call resumes instead of posting twice. Media is read under a
`MediaPolicy` (https only, public addresses, size limits, local files under given roots).
"""

from ._base import (
    Accepted,
    PlatformClient,
    PlatformError,
    Published,
    RetryRules,
    StatusReport,
    caption_text,
    with_retries,
)
from ._build import DEFAULT_BASE_URLS, build_client
from ._instagram import InstagramClient
from ._journal import (
    ABANDONED,
    ACCEPTED,
    CREATED,
    INTENT,
    PUBLISHING,
    UPLOADED,
    Checkpoint,
    Journal,
    LiveObjectWatch,
    MemoryJournal,
)
from ._media import MediaPolicy, address_allowed, check_url, media_client
from ._tiktok import TikTokClient
from ._youtube import YouTubeClient

__all__ = [
    "ABANDONED",
    "ACCEPTED",
    "CREATED",
    "DEFAULT_BASE_URLS",
    "INTENT",
    "PUBLISHING",
    "UPLOADED",
    "Accepted",
    "Checkpoint",
    "InstagramClient",
    "Journal",
    "LiveObjectWatch",
    "MediaPolicy",
    "MemoryJournal",
    "PlatformClient",
    "PlatformError",
    "Published",
    "RetryRules",
    "StatusReport",
    "TikTokClient",
    "YouTubeClient",
    "address_allowed",
    "build_client",
    "caption_text",
    "check_url",
    "media_client",
    "with_retries",
]

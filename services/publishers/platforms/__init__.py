"""One httpx client per platform behind one interface (`PlatformClient`).

    client = build_client(Platform.TIKTOK, http, "http://localhost:8080/tiktok")
    outcome = await client.publish(request, token)          # Accepted | Published
    report = await client.check_status(outcome.handle, token)

Every failure is a `PlatformError` classified retryable / rate_limited / quota / auth /
permanent by the platform's own error code (see /work/shared/platforms.md).
"""

from ._base import Accepted, PlatformClient, PlatformError, Published, StatusReport, caption_text
from ._build import DEFAULT_BASE_URLS, build_client
from ._instagram import InstagramClient
from ._tiktok import TikTokClient
from ._youtube import YouTubeClient

__all__ = [
    "DEFAULT_BASE_URLS",
    "Accepted",
    "InstagramClient",
    "PlatformClient",
    "PlatformError",
    "Published",
    "StatusReport",
    "TikTokClient",
    "YouTubeClient",
    "build_client",
    "caption_text",
]

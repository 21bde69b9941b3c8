"""Pick the client for a platform."""

from __future__ import annotations

from typing import Any

import httpx

from contracts import Platform

from . import _instagram, _tiktok, _youtube
from ._base import PlatformClient

DEFAULT_BASE_URLS = {
    Platform.TIKTOK: _tiktok.DEFAULT_BASE_URL,
    Platform.INSTAGRAM: _instagram.DEFAULT_BASE_URL,
    Platform.YOUTUBE: _youtube.DEFAULT_BASE_URL,
}
_CLIENTS = {
    Platform.TIKTOK: _tiktok.TikTokClient,
    Platform.INSTAGRAM: _instagram.InstagramClient,
    Platform.YOUTUBE: _youtube.YouTubeClient,
}


def build_client(platform: Platform | str, http: httpx.AsyncClient, base_url: str | None = None,
                 **options: Any) -> PlatformClient:
    """The client for `platform` on `http`; `base_url` None means the real API.

    For the sandbox pass `<sandbox root>/<platform>`, e.g. `http://localhost:8080/tiktok`.
    Options go to the client. All: `limits`, `retry`; those that read media themselves also
    `media_http`, `media_policy`. TikTok `chunk_size`, `pull_prefixes`, `unaudited`; Instagram
    `api_version`, `poll_interval`, `poll_max_interval`, `poll_timeout`, `read_publishing_limit`;
    YouTube `chunk_size`, `privacy_status`, `category_id`, `schedule_lead`, `interruptions`, `clock`.
    """
    platform = Platform(platform)
    return _CLIENTS[platform](http, base_url or DEFAULT_BASE_URLS[platform], **options)

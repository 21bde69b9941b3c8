"""Where a publisher gets an account's access token.

Until accounts and encrypted credentials are stored, only the sandbox has tokens: it accepts
`sandbox:<accountId>` as that account's token.
"""

from __future__ import annotations

from typing import Protocol

from contracts import ErrorClass, Platform

from .platforms import PlatformError


class TokenSource(Protocol):
    async def token_for(self, platform: Platform, account_id: str) -> str: ...


class SandboxTokens:
    async def token_for(self, platform: Platform, account_id: str) -> str:
        return f"sandbox:{account_id}"


class NoTokens:
    async def token_for(self, platform: Platform, account_id: str) -> str:
        raise PlatformError(ErrorClass.AUTH, "no_credentials",
                            f"no credentials stored for {platform.value} account {account_id}")

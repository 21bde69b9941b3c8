"""Local fakes of the TikTok, Instagram and YouTube publishing APIs, in one ASGI app.

    import uvicorn, sandbox
    uvicorn.run(sandbox.create_app(sandbox.SandboxSettings(processing_seconds=0)), port=8080)

Mounts `/tiktok`, `/instagram`, `/youtube` (the platforms' paths after their hosts), `/media`
(a deterministic media host) and `/_sandbox/{published,reset,stats}`. See platforms.md.
Each platform's OAuth endpoints, and `/_sandbox/oauth/{expire,revoke,calls}`: sandbox/_oauth.py.
"""

from ._app import SandboxState, create_app
from ._store import Faults, SandboxSettings

__all__ = ["Faults", "SandboxSettings", "SandboxState", "create_app"]

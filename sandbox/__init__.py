"""Local fakes of the TikTok, Instagram and YouTube publishing APIs, in one ASGI app.

    import uvicorn, sandbox
    uvicorn.run(sandbox.create_app(sandbox.SandboxSettings(processing_seconds=0),
                                   faults=sandbox.flaky()), port=8080)

Mounts `/tiktok`, `/instagram`, `/youtube` (the platforms' paths after their hosts), `/media`
(a deterministic media host) and `/_sandbox/{published,reset,stats,faults,engagement}`. Each
fake keeps its state (uploads, containers, posts), its rate counters and daily quotas, and
answers in the platform's own envelopes (see platforms.md §5). Faults are injected per
platform, operation and account (see `_faults.py`); the published log counts duplicates by
content. Posts earn engagement from a hidden curve per account (`_engagement.py`).
Each platform's OAuth endpoints, and `/_sandbox/oauth/{expire,revoke,calls}`: sandbox/_oauth.py.
"""

from ._app import SandboxState, create_app, rules_from_json
from ._engagement import AccountTruth, EngagementSimulation
from ._faults import KINDS, PROFILES, FaultInjector, FaultRule, flaky
from ._store import Faults, SandboxSettings

__all__ = ["KINDS", "PROFILES", "AccountTruth", "EngagementSimulation", "FaultInjector", "FaultRule", "Faults",
           "SandboxSettings", "SandboxState", "create_app", "flaky", "rules_from_json"]

"""Each platform's rules for a post, checked before it is queued and again before it is sent.

Pure: no I/O. Problems are machine-readable (`reason` code, `field` path, `target`):

    problems = content_problems(event)              # at submit, every target of the event
    problems = publish_problems(request)            # in the publisher, before the platform call
    problems = fetched_media_problems(request, 0, size_bytes=n, content_type="video/mp4")
    error = rejection_for(problems)                 # a ContractError for content.rejected

Rules use what `MediaRef` declares (mimeType, sizeBytes, durationSec, width, height; the MIME
type from the URL's extension when not declared) and what the publisher learns fetching media.
What is not known is not held against a post: the platform still checks it.
"""

from ._check import Draft, content_problems, draft_problems, fetched_media_problems, publish_problems
from ._media import MediaFacts, declared_facts
from ._problems import Problem, Reason, rejection_for

__all__ = [
    "Draft",
    "MediaFacts",
    "Problem",
    "Reason",
    "content_problems",
    "declared_facts",
    "draft_problems",
    "fetched_media_problems",
    "publish_problems",
    "rejection_for",
]

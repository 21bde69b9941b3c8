"""autopost's wire contracts: the only thing services share on the wire.

Every message is a Pydantic model, camelCase on the wire, serialized with orjson, and carries
`schemaVersion`. Decode with `Model.from_bytes(raw)`, which raises `ContractError` with a
machine-readable `reason` on bad input.
"""

from ._alerts import AdminAlert, AlertKind
from ._base import SCHEMA_VERSION, ContractError, Message, WireModel, decode
from ._common import ContentType, MediaRef, Platform, normalise_hashtags
from ._content import (
    ContentRejected,
    ContentSubmitted,
    FieldProblem,
    TargetSpec,
    post_id_for,
    target_id_for,
)
from ._engagement import EngagementFigures, EngagementObserved
from ._slots import SlotChange, SlotChanged
from ._queue import (
    FINDS_POSTS_BY_ADDRESS,
    FOUND_HANDLE_KIND,
    NEEDS_REVIEW,
    DeadLetter,
    ErrorClass,
    ObservedState,
    PlannedTarget,
    PostContent,
    PostPlanned,
    PublishError,
    PublishOutcome,
    PublishRequested,
    PublishResult,
    RemoteHandle,
    StatusCheck,
    StatusObserved,
    StatusRequested,
)
from ._schedule import (
    WEEKDAYS,
    AsSoonAsPossible,
    AtTime,
    AudienceData,
    BestTime,
    Blackout,
    HistoricalPerformance,
    OptimalWithin,
    ScheduleInput,
    ScheduleRequest,
    ScheduleSlot,
)
from ._schema import asyncapi_document, channels, export_schemas, message_schemas
from ._topics import Topics, prefixed

__all__ = [
    "AdminAlert",
    "AlertKind",
    "SCHEMA_VERSION",
    "WEEKDAYS",
    "AsSoonAsPossible",
    "AtTime",
    "AudienceData",
    "BestTime",
    "Blackout",
    "ContentRejected",
    "ContentSubmitted",
    "ContentType",
    "ContractError",
    "DeadLetter",
    "EngagementFigures",
    "EngagementObserved",
    "ErrorClass",
    "FieldProblem",
    "HistoricalPerformance",
    "MediaRef",
    "Message",
    "ObservedState",
    "OptimalWithin",
    "Platform",
    "PlannedTarget",
    "PostContent",
    "PostPlanned",
    "PublishError",
    "FINDS_POSTS_BY_ADDRESS",
    "FOUND_HANDLE_KIND",
    "NEEDS_REVIEW",
    "PublishOutcome",
    "PublishRequested",
    "PublishResult",
    "RemoteHandle",
    "ScheduleInput",
    "ScheduleRequest",
    "ScheduleSlot",
    "SlotChange",
    "SlotChanged",
    "StatusCheck",
    "StatusObserved",
    "StatusRequested",
    "TargetSpec",
    "Topics",
    "WireModel",
    "asyncapi_document",
    "channels",
    "decode",
    "export_schemas",
    "message_schemas",
    "normalise_hashtags",
    "post_id_for",
    "prefixed",
    "target_id_for",
]

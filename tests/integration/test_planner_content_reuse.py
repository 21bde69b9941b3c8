"""An upstream id reused with other content is rejected through the real broker; the same event
again is planned as before. (The planner's own record of the content, read whatever the queue
did with the post: test_planner_own_contents.py.)"""

import pytest

from contracts import ContentRejected, PostPlanned, Topics
from harness import Pipeline, event_json, produce, read_topic, settings_for

pytestmark = pytest.mark.integration


async def test_the_same_targets_with_other_content_are_rejected(kafka_bootstrap, topic_prefix, database_url):
    settings = settings_for(kafka_bootstrap, topic_prefix, database_url)
    submitted = topic_prefix + Topics.CONTENT_SUBMITTED
    planned, rejected = topic_prefix + Topics.POST_PLANNED, topic_prefix + Topics.CONTENT_REJECTED
    first = event_json("edited", [("tiktok", "brand")], "https://cdn.test/v.mp4")
    edited = event_json("edited", [("tiktok", "brand")], "https://cdn.test/other.mp4", caption="rewritten")

    async with Pipeline(settings, ["planner"]):
        await produce(kafka_bootstrap, submitted, [first], key=b"first")
        [plan] = await read_topic(kafka_bootstrap, planned, 1)
        await produce(kafka_bootstrap, submitted, [edited, first], key=b"again")  # an edit, a redelivery
        [refusal] = await read_topic(kafka_bootstrap, rejected, 1)
        plans = await read_topic(kafka_bootstrap, planned, 2)

    answer = ContentRejected.from_bytes(refusal.value)
    assert answer.reason == "upstream_id_reused" and answer.upstream_id == "edited"
    assert [(d.field, d.target) for d in answer.details] == [
        ("media", None), ("caption", None), ("targets", "tiktok:brand")]  # the caption it inherits
    assert answer.payload() == edited
    again, before = PostPlanned.from_bytes(plans[1].value), PostPlanned.from_bytes(plan.value)
    assert (again.content, again.targets) == (before.content, before.targets), "the redelivery: the same plan"

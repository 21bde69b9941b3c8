"""`autopost posts | retry | cancel | reschedule | found | dlq`: the operator's commands.

They talk to Postgres (the record) directly; changes go through the queue's own operations,
under the same row locks and version checks as the services, so a command racing the
dispatcher is decided after the dispatch and says so.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import dataclasses
import re
import sys
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import orjson

from ._table import format_table

_RELATIVE = re.compile(r"^\+(\d+(?:\.\d+)?)([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def register(commands: argparse._SubParsersAction) -> None:
    posts = commands.add_parser("posts", help="list posts, or show one post's timeline")
    posts_commands = posts.add_subparsers(dest="posts_command", required=True)
    ls = posts_commands.add_parser("ls", help="newest first, one line per target")
    ls.add_argument("--status", help="only targets in this status (pending, publishing, posted, failed, ...)")
    ls.add_argument("--limit", type=int, default=50)
    _json_flag(ls).set_defaults(run=_run(_posts_ls))
    show = posts_commands.add_parser("show", help="every target and attempt of one post, with trace ids")
    show.add_argument("ref", help="post id, target id or upstream id")
    _json_flag(show).set_defaults(run=_run(_posts_show))

    for name, text in (("retry", "publish a failed or waiting target again now"),
                       ("cancel", "cancel targets not dispatched yet")):
        command = commands.add_parser(name, help=text)
        command.add_argument("ref", help="post id, target id or upstream id (every target of a post)")
        _json_flag(command).set_defaults(run=_run(_command(name)))
    reschedule = commands.add_parser("reschedule", help="move targets not dispatched yet to another time")
    reschedule.add_argument("ref", help="post id, target id or upstream id")
    reschedule.add_argument("--at", required=True, type=parse_time,
                            help="ISO 8601 with a zone (2026-12-24T18:00:00+01:00), or +30m / +2h / +1d")
    _json_flag(reschedule).set_defaults(run=_run(_command("reschedule")))
    found = commands.add_parser("found", help="a target that failed for review is on the platform after all")
    found.add_argument("ref", help="post id, target id or upstream id")
    found.add_argument("--url", required=True, type=public_url, help="the post's address on the platform")
    found.add_argument("--at", type=parse_time, default=None,
                       help="when it went out (ISO 8601 with a zone; default: when the target failed for review)")
    _json_flag(found).set_defaults(run=_run(_command("found")))

    dlq = commands.add_parser("dlq", help="messages a consumer set aside")
    dlq_commands = dlq.add_subparsers(dest="dlq_command", required=True)
    dlq_ls = dlq_commands.add_parser("ls", help="dead letters not replayed yet, newest first")
    dlq_ls.add_argument("--all", action="store_true", help="include the replayed ones")
    dlq_ls.add_argument("--limit", type=int, default=50)
    _json_flag(dlq_ls).set_defaults(run=_run(_dlq_ls))
    dlq_show = dlq_commands.add_parser("show", help="one dead letter whole: reason, key, headers, payload")
    dlq_show.add_argument("id", type=int)
    dlq_show.add_argument("--no-source", action="store_true",
                          help="do not read a truncated letter's record at its source position from the broker")
    _json_flag(dlq_show).set_defaults(run=_run(_dlq_show))
    replay = dlq_commands.add_parser("replay", help="send dead letters to their source topic again")
    replay.add_argument("ids", type=int, nargs="*")
    replay.add_argument("--all", action="store_true", help="every dead letter not replayed yet")
    replay.set_defaults(run=_run(_dlq_replay))


def parse_time(text: str, now: datetime | None = None) -> datetime:
    now = now or datetime.now(timezone.utc)
    if match := _RELATIVE.match(text.strip()):
        return now + timedelta(**{_UNITS[match.group(2)]: float(match.group(1))})
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is neither ISO 8601 nor +N[smhd]") from None
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} needs a zone (Z or an offset such as +01:00)")
    return moment.astimezone(timezone.utc)


def public_url(text: str) -> str:
    parts = urlsplit(text.strip())
    if parts.scheme != "https" or not parts.hostname:
        raise argparse.ArgumentTypeError(f"{text!r} is not an https address")
    return parts.geturl()


def _json_flag(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    return parser


Handler = Callable[[argparse.Namespace, asyncpg.Connection, Any], Awaitable[int]]


def _run(handler: Handler) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        from services.runtime import Settings

        return asyncio.run(_with_connection(Settings.from_env(), args, handler))

    return run


async def _with_connection(settings, args, handler: Handler) -> int:
    from services.runtime import create_pool

    try:
        pool = await create_pool(settings.database_url, min_size=1, max_size=2)
    except (OSError, asyncpg.PostgresError) as exc:
        print(f"cannot reach the database ($DATABASE_URL): {exc}", file=sys.stderr)
        return 2
    try:
        async with pool.acquire() as conn:
            return await handler(args, conn, (settings, pool))
    except asyncpg.UndefinedTableError:
        print("the database has no autopost schema yet: run `autopost migrate`", file=sys.stderr)
        return 2
    finally:
        await pool.close()


def _print_json(data: Any) -> None:
    print(orjson.dumps(data, default=_jsonable, option=orjson.OPT_INDENT_2).decode())


def _jsonable(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return _text_or_base64(bytes(value))
    if isinstance(value, asyncpg.Record):
        return dict(value)
    raise TypeError


def _text_or_base64(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return "base64:" + base64.b64encode(raw).decode()


def _when(moment: datetime | None) -> str | None:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S") if moment else None


# -- posts ----------------------------------------------------------------------------------

async def _posts_ls(args, conn, _) -> int:
    from ._posts import list_posts

    rows = await list_posts(conn, status=args.status, limit=args.limit)
    if args.json:
        _print_json(rows)
        return 0
    print(format_table(
        ("upstream id", "post id", "platform", "account", "status", "attempt", "scheduled", "published", "url / error"),
        [(r["upstream_id"], r["post_id"], r["platform"], r["account_id"], r["status"], r["attempt"],
          _when(r["scheduled_time"]), _when(r["published_at"]), r["url"] or r["error"]) for r in rows]))
    return 0


async def _posts_show(args, conn, _) -> int:
    from services.runtime import trace_id_of

    from ._posts import post_timeline

    post = await post_timeline(conn, args.ref)
    if post is None:
        print(f"no post or target matches {args.ref!r}", file=sys.stderr)
        return 1
    post["trace_id"] = trace_id_of(post["trace_context"])
    if args.json:
        _print_json(post)
        return 0
    print(f"post {post['post_id']}  upstream {post['upstream_id']}  trace {post['trace_id'] or '-'}")
    print(f"created {_when(post['created_at'])} UTC\n")
    print(format_table(
        ("target", "platform", "account", "status", "attempt", "failures", "scheduled", "next due", "published", "url"),
        [(t["target_id"], t["platform"], t["account_id"], t["status"], t["attempt"], t["failures"],
          _when(t["scheduled_time"]), _when(t["due_at"]), _when(t["published_at"]), t["url"])
         for t in post["targets"]]))
    platform_of = {t["target_id"]: t["platform"] for t in post["targets"]}
    print("\ntimeline (UTC)")
    print(format_table(
        ("at", "platform", "attempt", "outcome", "error", "message", "trace id"),
        [(_when(a["at"]), platform_of[a["target_id"]], a["attempt"], a["outcome"],
          "/".join(filter(None, (a["error_class"], a["error_code"]))) or None, a["message"], a["trace_id"])
         for a in post["attempts"]]))
    return 0


def _command(name: str) -> Handler:
    async def run(args, conn, context) -> int:
        from opentelemetry import trace

        from services.publishers.handles import set_aside_reviewed_intents
        from services.queue.operations import QueueOperations

        settings, pool = context
        # re-armed by an operator, a target that awaited review was checked: its unanswered init
        # is not on the platform, so the publisher may send a new one
        ops = QueueOperations(pool, settings.queue, trace.get_tracer("autopost.cli"), settings.topic,
                              settle_review=set_aside_reviewed_intents)
        if name == "reschedule":
            outcomes = await ops.reschedule(args.ref, args.at)
        elif name == "found":
            outcomes = await ops.found(args.ref, args.url, args.at)
        else:
            outcomes = await getattr(ops, name)(args.ref)
        from services.queue.domain._operator import HELD_FOR_REVIEW

        # a refusal every target shares (a reference naming several for `found`) is said once
        shared = {o.detail for o in outcomes if not o.applied}
        once = next(iter(shared)) if len(outcomes) > 1 and len(shared) == 1 and not any(
            o.applied for o in outcomes) else None
        if args.json:
            _print_json([dataclasses.asdict(o) for o in outcomes])
        elif not outcomes:
            print(f"no post or target matches {args.ref!r}", file=sys.stderr)
        else:
            print(format_table(("target", "platform", "account", "status", "result"),
                               [(o.target_id, o.platform, o.account_id, o.status,
                                 f"{name}: {o.detail}" if o.applied
                                 else "not changed (see below)" if once else f"not changed: {o.detail}")
                                for o in outcomes]))
            if once:
                print(f"\n{name} refused: {once}", file=sys.stderr)
        # a target held back for review was not re-armed, though others of its post were: say so
        held = any(not o.applied and o.detail.startswith(HELD_FOR_REVIEW) for o in outcomes)
        return 0 if any(o.applied for o in outcomes) and not held else 1

    return run


# -- dead letters ---------------------------------------------------------------------------

async def _dlq_ls(args, conn, _) -> int:
    from ._dead_letters import list_dead_letters

    rows = await list_dead_letters(conn, include_replayed=args.all, limit=args.limit)
    if args.json:
        _print_json(rows)
        return 0
    print(format_table(
        ("id", "consumer", "reason", "from", "failed", "replays", "message"),
        [(r["id"], r["consumer"], r["reason"], f"{r['source_topic']}@{r['source_partition']}/{r['source_offset']}",
          _when(r["failed_at"]), r["replays"], r["message"]) for r in rows]))
    return 0


async def _dlq_show(args, conn, context) -> int:
    """One letter whole. A truncated one is replayed by hand from its source position: the record
    there is read (unless `--no-source`) and checked against the letter's whole-record digest;
    exit 1 when it is another record (the topic deleted and recreated since)."""
    from ._dead_letters import dead_letter, read_source_record

    letter = await dead_letter(conn, args.id)
    if letter is None:
        print(f"no dead letter {args.id}", file=sys.stderr)
        return 1
    source = None
    if letter["truncated"] and letter["source_offset"] is not None and not args.no_source:
        settings, _ = context
        source = await read_source_record(settings.kafka.bootstrap_servers, letter)
    code = 1 if source is not None and source.state == "differs" else 0
    if args.json:
        _print_json({**letter, "source_record": source.to_json() if source else None})
        return code
    for field in ("id", "consumer", "reason", "message", "source_topic", "source_partition", "source_offset",
                  "failed_at", "replays", "replayed_at", "truncated", "payload_bytes", "payload_sha256"):
        print(f"{field:>16}: {letter.get(field)}")
    print(f"{'key':>16}: {_text_or_base64(bytes(letter['key'])) if letter['key'] else None}")
    print(f"{'headers':>16}: {orjson.dumps(letter['headers']).decode()}")
    print(f"{'payload':>16}: {_text_or_base64(bytes(letter['payload']))}")
    if source is not None:
        print(f"{'source record':>16}: {source.state}: {source.detail}",
              file=sys.stderr if source.state == "differs" else sys.stdout)
    return code


async def _dlq_replay(args, conn, context) -> int:
    from aiokafka import AIOKafkaProducer

    from services.runtime import topic_partitions

    from ._dead_letters import last_unreplayed_id, replay, replay_unreplayed

    settings, _ = context
    # every letter not replayed yet as of now, read and sent a page at a time (not those the
    # replays bring back)
    up_to = await last_unreplayed_id(conn) if args.all else None
    if not args.ids and up_to is None:
        print("nothing to replay: give dead letter ids or --all", file=sys.stderr)
        return 1
    # as the services' producers: acks from all replicas, and a bounded wait for a topic's
    # metadata (the client's default is 40 s a letter)
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka.bootstrap_servers, acks="all",
                                enable_idempotence=settings.kafka.enable_idempotence,
                                request_timeout_ms=_REPLAY_REQUEST_TIMEOUT_MS)
    failed: dict[int, str] = {}
    await producer.start()
    try:
        # a letter is sent only to a topic that exists: the client asks the broker for a topic's
        # metadata allowing it to create the topic (as the services' producers do), so one that
        # was deleted could come back, unconfigured, were the broker to allow auto-creation
        topics = set(await topic_partitions(settings.kafka.bootstrap_servers,
                                            request_timeout_ms=_REPLAY_REQUEST_TIMEOUT_MS))
        replayed, truncated = [], []
        if up_to is not None:
            replayed, truncated = await replay_unreplayed(conn, producer, up_to, failed=failed, topics=topics)
        done = set(replayed) | set(truncated) | set(failed)
        more = await replay(conn, producer, [i for i in args.ids if i not in done], failed=failed, topics=topics)
        replayed, truncated = replayed + more[0], truncated + more[1]
    finally:
        await producer.stop()
    missing = sorted(set(args.ids) - set(replayed) - set(truncated) - set(failed))
    print(f"replayed {len(replayed)} dead letter(s)" + (f"; not found: {missing}" if missing else ""))
    if truncated:
        print(f"not replayed: {truncated} hold only the start of their message (it was too large to keep "
              "whole); replay it from its source topic and offset, which `dlq show` gives once it has checked "
              "that the record there is still this letter's", file=sys.stderr)
    for letter_id, why in sorted(failed.items()):
        print(f"not sent: dead letter {letter_id}: {why}; it stays not replayed", file=sys.stderr)
    asked_for_truncated = set(truncated) & set(args.ids)
    return 0 if (replayed or truncated) and not missing and not asked_for_truncated and not failed else 1


_REPLAY_REQUEST_TIMEOUT_MS = 10_000

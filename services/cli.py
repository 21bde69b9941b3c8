"""`autopost`: run a service, the sandboxes, the whole local stack, or export the schemas."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path


def _service(args: argparse.Namespace) -> int:
    from .catalog import build_service
    from .runtime import ServiceContext, Settings, run_until_signalled

    settings = Settings.from_env()
    _logging(settings.log_level, service=args.name, fmt=settings.log_format)
    service = build_service(args.name, ServiceContext(args.name, settings))
    _run(run_until_signalled(service))
    return 0


def _run(main) -> object:
    """uvloop's event loop where it is installed: less CPU per message and per request."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)


def _sandbox(args: argparse.Namespace) -> int:
    import orjson
    import uvicorn

    from sandbox import PROFILES, SandboxSettings, create_app, rules_from_json

    _logging("INFO", service="sandbox", fmt=os.environ.get("AUTOPOST_LOG_FORMAT", "json"))
    try:
        faults = PROFILES[args.faults]() if args.faults else []
        for text in args.fault:
            faults += rules_from_json(orjson.loads(text))
    except (KeyError, ValueError, TypeError, orjson.JSONDecodeError) as error:
        raise SystemExit(f"bad --faults/--fault: {error}") from None
    settings = SandboxSettings(processing_seconds=args.processing_seconds, public_base_url=args.public_base_url,
                               rate_limits=not args.no_rate_limits, daily_quotas=not args.no_daily_quotas,
                               tiktok_unaudited=args.tiktok_unaudited, require_issued_tokens=args.require_oauth,
                               access_token_seconds=args.access_token_seconds)
    app = create_app(settings, faults=faults)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)
    return 0


def _publish_once(args: argparse.Namespace) -> int:
    import orjson

    from contracts import ContentType, Platform
    from .publishers.once import publish_once
    from .runtime import Settings

    settings = Settings.from_env()
    _logging(settings.log_level if settings.log_level != "INFO" else "WARNING")
    scheduled = _datetime(args.at) if args.at else None
    outcome = asyncio.run(publish_once(
        settings, Platform(args.platform), args.account, args.media, args.caption,
        hashtags=args.hashtag, content_type=ContentType(args.content_type) if args.content_type else None,
        scheduled_time=scheduled, timeout=args.timeout, attempts=args.attempts))
    if args.json:
        print(orjson.dumps(outcome.to_json(), option=orjson.OPT_INDENT_2).decode())
    else:
        print(outcome.describe())
    return 0 if outcome.status == "published" else 1


def _datetime(text: str):
    from datetime import datetime

    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise SystemExit("--at needs a time zone, e.g. 2026-12-01T18:00:00Z")
    return moment


def _schema_export(args: argparse.Namespace) -> int:
    from contracts import export_schemas

    for path in export_schemas(Path(args.directory)):
        print(path)
    return 0


def _migrate(args: argparse.Namespace) -> int:
    from .runtime import Settings, apply_migrations, create_pool

    async def run() -> list[str]:
        pool = await create_pool(Settings.from_env().database_url, min_size=1, max_size=1)
        try:
            async with pool.acquire() as conn:
                return await apply_migrations(conn)
        finally:
            await pool.close()

    applied = asyncio.run(run())
    print(f"applied {', '.join(applied)}" if applied else "schema is up to date")
    return 0


def _submit(args: argparse.Namespace) -> int:
    from .runtime import Settings
    from .submit import submit_files

    return asyncio.run(submit_files(Settings.from_env(), [Path(p) for p in args.files]))


def _plan(args: argparse.Namespace) -> int:
    from .planner.command import run

    return run(args.input, count=args.count, horizon_days=args.horizon_days, strategy=args.strategy,
               now=args.now)


def _dev(args: argparse.Namespace) -> int:
    from .devstack.launcher import run_dev

    return asyncio.run(run_dev(demo=args.demo, as_json=args.json, keep_running=args.keep_running,
                               faults=args.faults))


def _accounts(args: argparse.Namespace) -> int:
    from contracts import Platform
    from services.accounts import commands, new_key_entry

    from .runtime import Settings

    if args.accounts_command == "new-key":
        print(new_key_entry(args.key_id))
        return 0
    settings = Settings.from_env()
    platform = Platform(args.platform) if getattr(args, "platform", None) else None
    run = {
        "add": lambda: commands.add(settings, platform, args.account_id, args.name),
        "ls": lambda: commands.ls(settings, platform, include_removed=args.all, as_json=args.json),
        "connect": lambda: commands.connect(settings, platform, args.account_id, code=args.code, name=args.name),
        "remove": lambda: commands.remove(settings, platform, args.account_id),
        "rekey": lambda: commands.rekey(settings),
    }[args.accounts_command]
    return asyncio.run(run())


def _logging(level: str, *, service: str | None = None, fmt: str = "json") -> None:
    from .runtime import configure_logging

    configure_logging(level, service=service, fmt=fmt)


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="autopost", description=__doc__)
    commands = root.add_subparsers(dest="command", required=True)

    service = commands.add_parser("service", help="run one service until SIGTERM")
    service.add_argument("name", help="planner | queue | publisher-tiktok | publisher-instagram | "
                                      "publisher-youtube | poller | notifier")
    service.set_defaults(run=_service)

    sandbox = commands.add_parser("sandbox", help="run the local TikTok, Instagram and YouTube fakes")
    sandbox.add_argument("--host", default="127.0.0.1")
    sandbox.add_argument("--port", type=int, default=8090)
    sandbox.add_argument("--processing-seconds", type=float, default=0.5)
    sandbox.add_argument("--require-oauth", action="store_true",
                         help="refuse API calls whose token the sandbox's OAuth did not issue")
    sandbox.add_argument("--access-token-seconds", type=float, default=None,
                         help="lifetime of issued access tokens (default: each platform's own)")
    sandbox.add_argument("--faults", choices=("flaky", "none"), default=None,
                         help="a fault profile: flaky = about one request in five meets a transient fault")
    sandbox.add_argument("--fault", action="append", default=[], metavar="JSON",
                         help='a fault rule, e.g. \'{"kind": "rate_limit", "platform": "tiktok", '
                              '"operation": "video_init", "count": 3, "waitSeconds": 5}\' (repeatable)')
    sandbox.add_argument("--public-base-url", default=None, help="the root clients reach the sandbox at")
    sandbox.add_argument("--no-rate-limits", action="store_true", help="no per-minute limits")
    sandbox.add_argument("--no-daily-quotas", action="store_true",
                         help="no daily caps (TikTok posts, Instagram posts and containers, YouTube quota)")
    sandbox.add_argument("--tiktok-unaudited", action="store_true", help="act as TikTok does for unaudited clients")
    sandbox.set_defaults(run=_sandbox)

    once = commands.add_parser("publish-once", help="publish one item and follow it to its end")
    once.add_argument("--platform", required=True, choices=("tiktok", "instagram", "youtube"))
    once.add_argument("--account", required=True)
    once.add_argument("--media", required=True, metavar="PATH_OR_URL")
    once.add_argument("--caption", required=True)
    once.add_argument("--hashtag", action="append", default=[])
    once.add_argument("--content-type", choices=("video", "image", "story", "reel"), default=None,
                      help="default: from the media (video or image)")
    once.add_argument("--at", default=None, metavar="TIME",
                      help="the target time, ISO 8601 (YouTube schedules natively when far enough ahead)")
    once.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for the end")
    once.add_argument("--attempts", type=int, default=3, help="tries for transient failures (resumed)")
    once.add_argument("--json", action="store_true")
    once.set_defaults(run=_publish_once)

    schema = commands.add_parser("schema", help="message schemas")
    schema_commands = schema.add_subparsers(dest="schema_command", required=True)
    export = schema_commands.add_parser("export", help="write a JSON Schema per message and asyncapi.json")
    export.add_argument("directory")
    export.set_defaults(run=_schema_export)

    migrate = commands.add_parser("migrate", help="bring the database schema up to date ($DATABASE_URL)")
    migrate.set_defaults(run=_migrate)

    accounts = commands.add_parser("accounts", help="platform accounts and their credentials ($DATABASE_URL)")
    accounts.set_defaults(run=_accounts)
    accounts_commands = accounts.add_subparsers(dest="accounts_command", required=True)
    platforms = ["tiktok", "instagram", "youtube"]
    add = accounts_commands.add_parser("add", help="register an account (pending until connected)")
    add.add_argument("platform", choices=platforms)
    add.add_argument("account_id")
    add.add_argument("--name", default="", help="display name")
    listing = accounts_commands.add_parser("ls", help="list accounts and their status (never tokens)")
    listing.add_argument("platform", choices=platforms, nargs="?")
    listing.add_argument("--all", action="store_true", help="include removed accounts")
    listing.add_argument("--json", action="store_true")
    connect = accounts_commands.add_parser(
        "connect", help="authorize through the platform's OAuth (by itself against the sandbox)")
    connect.add_argument("platform", choices=platforms)
    connect.add_argument("account_id")
    connect.add_argument("--code", help="an authorization code already obtained; else you are asked")
    connect.add_argument("--name", default="", help="display name")
    remove = accounts_commands.add_parser("remove", help="stop publishing for an account and delete its tokens")
    remove.add_argument("platform", choices=platforms)
    remove.add_argument("account_id")
    accounts_commands.add_parser("rekey", help="re-seal every stored token with the current (first) key")
    new_key = accounts_commands.add_parser("new-key", help="print a fresh credential key entry (id:base64)")
    new_key.add_argument("key_id", nargs="?", default="k1")

    submit = commands.add_parser("submit", help="send content events (JSON files) to content.submitted")
    submit.add_argument("files", nargs="+")
    submit.set_defaults(run=_submit)

    plan = commands.add_parser("plan", help="print the best slots for inputs in the original shape (JSON)")
    plan.add_argument("input", help="a JSON file: one input, or an array of inputs")
    plan.add_argument("--count", type=int, default=1, help="slots per input (default 1)")
    plan.add_argument("--horizon-days", type=float, default=7, help="how far ahead to look (default 7)")
    plan.add_argument("--strategy", choices=("learned", "heuristic"), default="learned")
    plan.add_argument("--now", default=None, help="plan as if at this ISO 8601 time (default: now)")
    plan.set_defaults(run=_plan)

    from .admin import register as register_operator_commands

    register_operator_commands(commands)

    dev = commands.add_parser("dev", help="run broker, Postgres, sandboxes and every service locally")
    dev.add_argument("--demo", type=int, default=None, metavar="N",
                     help="submit N demo posts, wait until each target ends, print the outcome, exit")
    dev.add_argument("--json", action="store_true", help="print the demo outcome as JSON")
    dev.add_argument("--keep-running", action="store_true", help="stay up after the demo")
    dev.add_argument("--faults", choices=("flaky",), default=None,
                     help="run the sandboxes with transient faults (about one request in five)")
    dev.set_defaults(run=_dev)
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())

"""The `caseclock` command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import datetime

from caseclock.core.policy import PolicyError, load_policy
from caseclock.core.timeutil import to_us
from caseclock.live.config import ConfigError


def _timestamp(text: str) -> int:
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an RFC 3339 timestamp: {text!r}") from None
    if dt.tzinfo is None:
        raise argparse.ArgumentTypeError(f"naive timestamp {text!r}: a UTC offset is required")
    return to_us(dt)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="caseclock", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("replay", help="run the SLA engine over a JSON-lines file of events")
    r.add_argument("events", help="events file (JSON lines), or - for stdin")
    r.add_argument("--until", type=_timestamp, help="horizon (RFC 3339); default: latest event")
    r.add_argument("--policy", help="policy file (TOML); default: built-in support-plus")
    r.add_argument("--strict", action="store_true", help="stop at the first invalid line")
    r.add_argument(
        "--status",
        metavar="FILE",
        help="write every opened case's final SLA status (JSON lines) to FILE",
    )
    r.add_argument(
        "--sla-events",
        metavar="FILE",
        help="write every clock transition (started, paused, fulfilled, ...) to FILE",
    )
    r.add_argument(
        "--attainment",
        action="store_true",
        help="add obligations met and missed (by plan, priority, clock) to the summary",
    )

    x = sub.add_parser("explain", help="one case's status and timeline, in words, from a history")
    x.add_argument("case_id", help="the case to explain")
    x.add_argument("--history", required=True, help="events file (JSON lines), or - for stdin")
    x.add_argument("--until", type=_timestamp, help="horizon (RFC 3339); default: latest event")
    x.add_argument("--policy", help="policy file (TOML); default: built-in support-plus")
    x.add_argument("--json", action="store_true", help="the case API's JSON document instead")

    s = sub.add_parser("schemas", help="write JSON Schemas and the AsyncAPI document")
    s.add_argument("--out", default="schemas", help="output directory (default: schemas)")
    s.add_argument("--check", action="store_true", help="fail if the files differ instead")
    sub.add_parser("worker", help="run the live service (configured by CASECLOCK_* variables)")

    d = sub.add_parser("demo", help="worker + demo producer + live console of alerts")
    d.add_argument("part", nargs="?", choices=("all", "produce", "watch"), default="all")
    d.add_argument("--seconds", type=float, help="stop after this long (default: Ctrl-C)")
    d.add_argument("--every", type=float, default=4.0, help="seconds between new cases")
    d.add_argument("--cases", type=int, help="produce: stop after this many cases")
    d.add_argument("--seed", type=int, help="produce: random seed")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "replay":
            from caseclock.replay import main_replay

            return main_replay(
                args.events,
                load_policy(args.policy),
                args.until,
                args.strict,
                args.status,
                args.sla_events,
                args.attainment,
            )
        if args.command == "explain":
            from caseclock.explain import main_explain

            return main_explain(
                args.case_id, args.history, load_policy(args.policy), args.until, args.json
            )
        if args.command == "worker":
            from caseclock.cli.worker import run_worker

            return run_worker()
        if args.command == "demo":
            return _demo(args)
        if args.command == "schemas":
            from caseclock.contracts.schemas import main_schemas

            return main_schemas(args.out, args.check)
    except (PolicyError, ConfigError) as e:
        print(f"caseclock: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0
    return 2


def _demo(args: argparse.Namespace) -> int:
    import asyncio
    import os

    from caseclock.cli.demo import produce, run_demo, watch
    from caseclock.live.config import Config

    if args.part == "all":
        return run_demo(os.environ, args.seconds, args.every)
    cfg = Config.from_env(os.environ)
    try:
        if args.part == "produce":
            asyncio.run(produce(cfg, args.every, args.cases, args.seed))
        else:
            asyncio.run(watch(cfg, args.seconds))
    except KeyboardInterrupt:
        pass
    return 0

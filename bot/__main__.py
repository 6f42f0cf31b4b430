"""Command line: `python -m bot serve | web | worker | status | train | draft | replay | export-feedback | users |
brake | eval-intents | eval-sentiment | eval-risk | calibrate-unknown`."""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import logging
import sys
import time
from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path

from aiohttp import web
from pydantic import ValidationError
from redis.exceptions import RedisError

from bot import replay
from bot.app import build_classifier, build_composer, create_app, load_brand, load_encoder
from bot.channels.base import MAX_CHARS
from bot.channels.register import REGISTRABLE, register_channel
from bot.classify import Classifier
from bot.classify.evaluate import (
    calibrate_unknown,
    evaluate,
    flags_of,
    folds,
    holdout,
    holdout_each,
    read_labelled,
    score,
    score_risks,
    sentiments_of,
)
from bot.config import Settings, describe_errors
from bot.errors import ConfigError
from bot.logs import AccessLogger, configure_logging
from bot.metrics import create_metrics
from bot.models import Author, InboundMessage
from bot.policy.load import load_policy, write_unknown_threshold
from bot.policy.schema import BrandPolicy
from bot.review.accounts import manage_users
from bot.review.brake import manage_brake
from bot.review.feedback import export_feedback
from bot.review.users import Role
from bot.status import show_status

SERVERS = {
    "serve": "run the web server, the workers and the sender in one process (embedded Redis by default)",
    "web": "run only the webhooks, review API and metrics (needs BOT_REDIS_URL)",
    "worker": "run only a worker and a sender, with /metrics and health on --port (needs BOT_REDIS_URL)",
}


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="python -m bot", description="24/7 AI auto-responder for social media.")
    commands = root.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, help_text in SERVERS.items():
        command = commands.add_parser(name, help=help_text, description=help_text)
        command.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
        command.add_argument(
            "--port",
            type=int,
            default=8081 if name == "worker" else 8080,
            help="port to listen on (default %(default)s)",
        )
    text = "how it is doing now: queues, dead letters, review queue, incidents, rates (read from the service's Redis)"
    status = commands.add_parser("status", help=text, description=text)
    status.add_argument("--json", action="store_true", help="print one JSON object instead of a report")
    text = "read every brand file (policies/, prompts/) as a start does, without the model; exit 2 at the first problem"
    commands.add_parser("check", help=text, description=text)
    text = "train the intent model on policies/intents.yaml now and cache it (the service does this at start)"
    commands.add_parser("train", help=text, description=text)
    text = "train the service's intent classifier on a labelled CSV and score it on another"
    evaluate = commands.add_parser("eval-intents", help=text, description=text)
    evaluate.add_argument("--train", type=Path, required=True, help="CSV to train on")
    held_out = evaluate.add_mutually_exclusive_group(required=True)
    held_out.add_argument("--test", type=Path, help="CSV to score on")
    held_out.add_argument(
        "--holdout", type=float, metavar="SHARE", help="score on this share of TRAIN, held out per label"
    )
    held_out.add_argument(
        "--holdout-each",
        type=int,
        metavar="N",
        help="score on N rows of every label of TRAIN, held out: as many of each, as official test splits have",
    )
    held_out.add_argument(
        "--folds",
        type=int,
        metavar="K",
        help="cross-validate on TRAIN: k models, each scored on the 1/k of every label it did not train on",
    )
    evaluate.add_argument(
        "--seed",
        type=int,
        default=7,
        help="which --holdout(-each) split or --folds deal (default 7): other seeds show the figure's spread",
    )
    evaluate.add_argument("--text-col", default="text", help="column of the texts (default text)")
    evaluate.add_argument("--label-col", default="category", help="column of the intents (default category)")
    evaluate.add_argument("--oos-label", help="label of out-of-scope rows: calibrates and scores `unknown`")
    text = "score the brand's sentiment model (trained on policies/sentiment.yaml) on a labelled CSV"
    sentiment = commands.add_parser("eval-sentiment", help=text, description=text)
    sentiment.add_argument("--test", type=Path, required=True, help="CSV with negative / neutral / positive labels")
    sentiment.add_argument("--text-col", default="text", help="column of the texts (default text)")
    sentiment.add_argument("--label-col", default="label_name", help="column of the labels (default label_name)")
    sentiment.add_argument(
        "--map",
        action="append",
        default=[],
        metavar="LABEL=SENTIMENT",
        help="a label that means a sentiment (e.g. 1=negative for complaints); labels named negative, neutral or "
        "positive need none; rows of other labels are not scored, only counted by what they read as",
    )
    text = "score the brand's risk detectors on a labelled CSV or JSON Lines file: recall of each flag"
    risks = commands.add_parser("eval-risk", help=text, description=text)
    risks.add_argument("--test", type=Path, required=True, help="CSV or .jsonl file of labelled messages")
    risks.add_argument("--text-col", default="text", help="column of the texts (default text)")
    risks.add_argument("--label-col", default="label", help="column of the labels (default label)")
    risks.add_argument(
        "--map",
        action="append",
        default=[],
        metavar="LABEL=FLAG",
        help="a label that means a flag (e.g. 1=prompt_injection); labels naming a flag or one of its intents "
        "need none; other labels count as rows that should raise nothing",
    )
    text = "calibrate the brand's unknown_threshold on messages it should not claim to understand"
    unknown = commands.add_parser("calibrate-unknown", help=text, description=text)
    unknown.add_argument(
        "--oos", type=Path, action="append", required=True, help="CSV or .jsonl file of out-of-scope messages (repeat)"
    )
    unknown.add_argument("--text-col", default="text", help="column of the texts (default text)")
    unknown.add_argument("--label-col", help="with --oos-label: use only the rows that carry this label")
    unknown.add_argument("--oos-label", default="oos", help="the out-of-scope label (default oos)")
    unknown.add_argument(
        "--keep",
        type=float,
        default=0.95,
        help="share of the correctly classified in-scope examples the threshold must keep (default 0.95); "
        "0 instead balances in-scope accuracy and out-of-scope recall, as eval-intents does",
    )
    unknown.add_argument("--write", action="store_true", help="write the threshold into policies/intents.yaml")
    text = "draft a reply to one message as the service would (model, or offline), and show how it got there"
    drafting = commands.add_parser("draft", help=text, description=text)
    drafting.add_argument("text", help="the customer's message")
    drafting.add_argument(
        "--channel", default="generic", choices=sorted(MAX_CHARS), help="where it was written (default generic)"
    )
    drafting.add_argument("--handle", default="customer", help="the customer's handle (default customer)")
    drafting.add_argument("--json", action="store_true", help="print one JSON object instead of a report")
    text = "tell a platform where to deliver its messages (Telegram: setWebhook with BOT_TELEGRAM_SECRET_TOKEN)"
    channels = commands.add_parser("channels", help=text, description=text)
    channel_commands = channels.add_subparsers(dest="channels_command", required=True, metavar="ACTION")
    registering = channel_commands.add_parser("register", help="register this service's webhook with the platform")
    registering.add_argument("channel", choices=REGISTRABLE)
    registering.add_argument("--url", required=True, help="the public https:// address of /webhooks/<channel>")
    text = "manage reviewer accounts (in the service's Redis: BOT_REDIS_URL, or serve's embedded one)"
    users = commands.add_parser("users", help=text, description=text)
    user_commands = users.add_subparsers(dest="users_command", required=True, metavar="ACTION")
    adding = user_commands.add_parser("add", help="create a user; prints its one-time password and API token")
    adding.add_argument("name", help="lower case letters, digits, . _ - (2 to 32)")
    adding.add_argument("--role", choices=[role.value for role in Role], default=Role.REVIEWER.value)
    user_commands.add_parser("list", help="the users and their roles")
    removing = user_commands.add_parser("remove", help="delete a user (their token stops working at once)")
    removing.add_argument("name")
    text = "pull or lift the incident brake: a topic's messages (or all) go to review, with a holding reply or not"
    brake = commands.add_parser("brake", help=text, description=text)
    brake_commands = brake.add_subparsers(dest="brake_command", required=True, metavar="ACTION")
    on = brake_commands.add_parser("on", help="hold a topic (again: change how it is held)")
    on.add_argument("--topic", default="all", help="an intent of policies/intents.yaml, unknown, or all (default)")
    on.add_argument(
        "--action", choices=["review", "holding"], help="review (default), or holding: also the holding text at once"
    )
    on.add_argument(
        "--holding", metavar="TEXT", help="the holding text (implies --action holding; default: incident.holding)"
    )
    on.add_argument("--reason", help="why, for the audit log and the desk's banner")
    off = brake_commands.add_parser("off", help="clear the incident on a topic")
    off.add_argument("--topic", default="all", help="the topic to clear (default all)")
    brake_commands.add_parser("list", help="the incidents in force")
    text = "run messages (JSON Lines) through the real pipeline, sending nothing: one JSON line each, then a summary"
    replaying = commands.add_parser("replay", help=text, description=text)
    replaying.add_argument(
        "file",
        type=Path,
        help="JSON Lines: id, channel, public, author_handle, author_followers, text; rows from export-feedback "
        "also print each case where the bot would now act against the reviewer",
    )
    replaying.add_argument("--policy", type=Path, help="policies folder to decide with (default BOT_POLICIES_DIR)")
    replaying.add_argument("--against", type=Path, help="a second policies folder: print the decisions that differ")
    replaying.add_argument("--now", help="decide as at this ISO 8601 time (default now; no zone means UTC)")
    text = "write reviewers' decisions and edits as JSON Lines, for training and for replay to check against"
    exporting = commands.add_parser("export-feedback", help=text, description=text)
    exporting.add_argument("--out", type=Path, help="a .jsonl file to write (default: standard output)")
    exporting.add_argument("--since", help="only cases resolved at or after this ISO 8601 time (no zone means UTC)")
    return root


def brand_classifier(settings: Settings, policy: BrandPolicy) -> Classifier:
    """The brand's classifier as the service trains it (on policies/, or from the cache), for the commands that
    score batches: no message comes alone there, so nothing goes to ONNX Runtime (build_classifier)."""
    encoder = load_encoder(settings)
    return Classifier.build(encoder, policy, settings.model_cache, settings.intent_tuned_layers)


CONFUSIONS = "most frequent confusions (count  gold -> predicted):"
MISSES = "misses (the flag that should have fired) and flags raised on other rows ((their label)):"


def report(figures: Mapping[str, object], mistakes: list[str], heading: str = CONFUSIONS) -> int:
    """The mistakes, then the figures as the last line (one JSON object), for scripts to read."""
    print(heading, *mistakes, sep="\n")
    print(json.dumps(figures))
    return 0


def check(settings: Settings) -> int:
    """Every brand file read and cross-checked as a start reads them, without loading the model (a quarter of a
    second, after the imports): for an author after an edit, or a brand's own CI, before a deploy or a reload
    would refuse it."""
    brand = load_brand(settings)
    intents = brand.policy.intents.intents
    modes = Counter(spec.mode.value for spec in intents.values())
    flags = brand.policy.risk.flags
    patterns = sum(len(flag.patterns) for flag in flags.values())
    print(
        f"{settings.policies_dir}: valid: {len(intents)} intents "
        f"({', '.join(f'{count} {mode}' for mode, count in sorted(modes.items()))}), "
        f"{len(flags)} risk flags with {patterns} patterns"
    )
    print(f"{settings.prompts_dir}: valid: {len(brand.passages)} knowledge passages, {len(brand.answers)} answers")
    return 0


def train(settings: Settings) -> int:
    """Train (or find cached) the intent and sentiment heads for the brand's policies/, and embed its
    knowledge base, checking every brand file on the way."""
    started = time.perf_counter()
    brand = load_brand(settings)
    classifier = build_classifier(settings, load_encoder(settings), brand.policy)  # as the service will start
    try:
        print(f"intent model ready: {len(classifier.intents.labels)} intents, {time.perf_counter() - started:.1f} s")
        if classifier.sentiment is not None:
            print(f"sentiment model ready: {', '.join(classifier.sentiment.labels)}")
        composer = build_composer(settings, brand, classifier.encoder, None, create_metrics())
        print(f"knowledge base ready: {len(composer.knowledge.passages)} passages")
    finally:
        classifier.encoder.close()
    return 0


def aliases(items: list[str]) -> dict[str, str]:
    """`--map LABEL=NAME` options as a mapping, checked before any model loads."""
    malformed = [item for item in items if "=" not in item]
    if malformed:
        raise ConfigError(f"--map takes LABEL=NAME, got {malformed}")
    return dict(item.split("=", 1) for item in items)


def eval_sentiment(settings: Settings, args: argparse.Namespace) -> int:
    test_set = read_labelled(args.test, args.text_col, args.label_col)
    gold = sentiments_of(test_set.labels, aliases(args.map))
    classifier = brand_classifier(settings, load_policy(settings.policies_dir))
    try:
        return report(*asyncio.run(score(classifier, test_set, gold)))
    finally:
        classifier.encoder.close()


def eval_intents(settings: Settings, args: argparse.Namespace) -> int:
    train_set = read_labelled(args.train, args.text_col, args.label_col)
    if args.holdout is not None:
        if not 0 < args.holdout < 1:
            raise ConfigError(f"--holdout takes a share between 0 and 1, not {args.holdout}")
        splits = [holdout(train_set, args.holdout, args.seed)]
    elif args.holdout_each is not None:
        if args.holdout_each < 1:
            raise ConfigError(f"--holdout-each takes a count of rows, 1 or more, not {args.holdout_each}")
        splits = [holdout_each(train_set, args.holdout_each, args.seed)]
    elif args.folds is not None:
        if not 2 <= args.folds <= len(train_set.texts):
            raise ConfigError(f"--folds takes 2 to {len(train_set.texts)} (the rows of {args.train}), not {args.folds}")
        splits = folds(train_set, args.folds, args.seed)
    else:
        splits = [(train_set, read_labelled(args.test, args.text_col, args.label_col))]
    encoder = load_encoder(settings)
    try:
        figures = evaluate(encoder, splits, args.oos_label, settings.intent_tuned_layers)
        return report(*asyncio.run(figures))
    finally:
        encoder.close()


def eval_risk(settings: Settings, args: argparse.Namespace) -> int:
    mapping = aliases(args.map)
    test_set = read_labelled(args.test, args.text_col, args.label_col)
    policy = load_policy(settings.policies_dir)
    flag_of = flags_of(policy.risk, mapping)
    classifier = brand_classifier(settings, policy)
    try:
        figures, misses = asyncio.run(score_risks(classifier, test_set, flag_of))
        return report(figures, misses, MISSES)
    finally:
        classifier.encoder.close()


def calibrate(settings: Settings, args: argparse.Namespace) -> int:
    oos = []
    for path in args.oos:
        if args.label_col:
            rows = read_labelled(path, args.text_col, args.label_col)
            oos += [text for text, label in zip(rows.texts, rows.labels, strict=True) if label == args.oos_label]
        else:
            oos += read_labelled(path, args.text_col, args.text_col).texts  # every row, no label column needed
    if not oos:
        raise ConfigError(f"{', '.join(map(str, args.oos))}: no row labelled {args.oos_label!r} in {args.label_col!r}")
    policy = load_policy(settings.policies_dir)
    examples = [(name, text) for name, spec in policy.intents.intents.items() for text in spec.examples]
    encoder = load_encoder(settings)
    try:
        keep = args.keep or None
        figures = asyncio.run(calibrate_unknown(encoder, examples, oos, settings.intent_tuned_layers, keep))
    finally:
        encoder.close()
    if args.write:
        provenance = (
            f"calibrate-unknown --keep {args.keep}, {datetime.date.today()}: {figures['n_examples']} examples "
            "out of fold, "
            f"{figures['n_oos']} out-of-scope messages ({', '.join(p.name for p in args.oos)}); in-scope accuracy "
            f"{figures['in_scope_accuracy']}, out-of-scope recall {figures['oos_recall']}"
        )
        path = write_unknown_threshold(settings.policies_dir, float(figures["threshold"]), provenance)
        print(f"wrote unknown_threshold: {figures['threshold']} to {path}")
    print(json.dumps(figures))
    return 0


PUBLIC_CHANNELS = {"x_mention", "x_reply", "instagram_comment", "facebook_comment"}


def draft(settings: Settings, args: argparse.Namespace) -> int:
    brand = load_brand(settings)
    now = datetime.datetime.now(datetime.UTC)
    message = InboundMessage(
        channel=args.channel,
        id="cli",
        conversation_id="cli",
        text=args.text,
        author=Author(id="cli", handle=args.handle),
        created_at=now,
        public=args.channel in PUBLIC_CHANNELS,
        received_at=now,
    )
    encoder = load_encoder(settings)
    try:
        classifier = build_classifier(settings, encoder, brand.policy)  # one message, as the service runs it
        [outcome] = asyncio.run(replay.run(settings, brand, classifier, [message], now))
    finally:
        encoder.close()
    cls, result, decision = outcome.classification, outcome.draft, outcome.decision
    flags = [flag.name for flag in cls.risk_flags]
    passages = list(result.retrieved) if result else []
    figures = {
        "intent": cls.intent,
        "confidence": round(cls.confidence, 3),
        "sentiment": cls.sentiment,
        "risk_flags": flags,
        "passages": passages,
        "draft": result.text if result else None,
        "drafter": result.drafter if result else None,
        "grounded": bool(result and result.answerable),
        "sources": list(result.sources) if result else [],
        "note": result.note if result else "",
        "decision": decision.action.value,
        "reasons": list(decision.reasons),
    }
    if args.json:
        print(json.dumps(figures, ensure_ascii=False))
        return 0
    print(f"intent:    {cls.intent} ({cls.confidence:.2f}), sentiment {cls.sentiment}")
    print(f"risk:      {', '.join(flags) or 'none'}")
    print(f"passages:  {', '.join(passages) or 'none'}")
    if result is not None:
        print(f"drafter:   {result.drafter}, grounded: {'yes' if result.answerable else 'no'}")
        print(f"sources:   {', '.join(result.sources) or 'none'}")
        if result.note:
            print(f"note:      {result.note}")
    print(f"decision:  {decision.action.value} ({', '.join(decision.reasons)})")
    print()
    print(result.text if result and result.text else "(no draft)")
    return 0


def replay_file(settings: Settings, args: argparse.Namespace) -> int:
    try:
        now = datetime.datetime.fromisoformat(args.now) if args.now else datetime.datetime.now(datetime.UTC)
    except ValueError as error:
        raise ConfigError(f"--now takes an ISO 8601 time, not {args.now!r}") from error
    now = now if now.tzinfo else now.replace(tzinfo=datetime.UTC)
    cases = replay.read_cases(args.file, now)
    messages = [case.message for case in cases]
    runs = []
    encoder = load_encoder(settings)
    try:
        for folder in [args.policy or settings.policies_dir] + ([args.against] if args.against else []):
            policy_settings = settings.model_copy(update={"policies_dir": folder})
            brand = load_brand(policy_settings)
            classifier = Classifier.build(encoder, brand.policy, settings.model_cache, settings.intent_tuned_layers)
            runs.append(asyncio.run(replay.run(policy_settings, brand, classifier, messages, now)))
    finally:
        encoder.close()
    for outcome in runs[0]:
        print(json.dumps(replay.report(outcome), ensure_ascii=False))
    for regression in replay.against_reviewers(cases, runs[0]):
        print(json.dumps(regression, ensure_ascii=False))
    figures = replay.summary(cases, runs[0])
    if args.against:
        changed = replay.differences(cases, runs[0], runs[1])
        for change in changed:
            print(json.dumps(change, ensure_ascii=False))
        figures |= {"changed": len(changed), "against": replay.summary(cases, runs[1])}
    print(json.dumps(figures))
    return 0


# The commands that run once and exit (the others run a server).
TOOLS: dict[str, Callable[[Settings, argparse.Namespace], int]] = {
    "status": show_status,
    "check": lambda settings, _: check(settings),
    "train": lambda settings, _: train(settings),
    "draft": draft,
    "replay": replay_file,
    "users": manage_users,
    "brake": manage_brake,
    "channels": register_channel,
    "export-feedback": export_feedback,
    "eval-intents": eval_intents,
    "eval-sentiment": eval_sentiment,
    "eval-risk": eval_risk,
    "calibrate-unknown": calibrate,
}


def event_loop() -> asyncio.AbstractEventLoop:
    """uvloop when installed (the `fast` extra: about a fifth more webhook requests per second), else asyncio's."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        settings = Settings()
    except ValidationError as error:
        print("invalid settings:", *describe_errors(error), sep="\n  ", file=sys.stderr)
        return 2
    configure_logging(settings)
    try:
        if args.command in TOOLS:
            return TOOLS[args.command](settings, args)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    log = logging.getLogger("bot")  # a server's stderr is its log: every line JSON, for ops to search
    if args.command != "serve" and settings.redis_url is None:
        log.error(
            "%s: set BOT_REDIS_URL to the Redis shared by web and worker processes "
            "(only `serve` can use the embedded Redis)",
            args.command,
        )
        return 2
    try:
        app = create_app(settings, webhooks=args.command != "worker", workers=args.command != "web")
    except ConfigError as error:
        log.error("configuration error: %s", error)
        return 2
    log.info("starting command=%s host=%s port=%d", args.command, args.host, args.port)
    try:
        web.run_app(
            app,
            host=args.host,
            port=args.port,
            print=None,
            access_log=logging.getLogger("aiohttp.access"),
            access_log_class=AccessLogger,
            shutdown_timeout=settings.shutdown_timeout_s,
            loop=event_loop(),
        )
    except RedisError as error:  # at start: say what is wrong instead of a traceback
        log.error("cannot use Redis (BOT_REDIS_URL): %s", error)
        return 1
    except OSError as error:  # the port is taken, or the address is not ours
        log.error("cannot listen on %s:%d: %s", args.host, args.port, error)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`challenge`: a class's challenges from the command line — list, open one from a TOML file, submit a run, show the
leaderboard, export the grades (CSV a course system imports).

The command line acts as the machine (:data:`resnet_lab.identity.MACHINE`, a teacher): it opens challenges, sees
private scores at any time, and submits the machine's own runs (those trained from the command line)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..identity import MACHINE
from ..paths import write_atomic
from .common import add_run

ACTIONS = ("list", "open", "submit", "board", "export")


def register(sub: argparse._SubParsersAction) -> None:
    ch = sub.add_parser(
        "challenge", help="challenges scored on a hidden test split: list, open FILE, submit ID --run N, board ID, "
                          "export ID OUT.csv",
        description="`challenge list`; `challenge open FILE.toml` (a teacher's challenge, see docs/classroom.md); "
                    "`challenge submit ID --run N` (queue the run's scoring, once); `challenge board ID` (the "
                    "leaderboard: public score while open, private after the deadline; --private for a teacher's "
                    "view); `challenge export ID OUT.csv` (one row per student: name, best private score, run, "
                    "parameters, epochs, submitted at; --runs RUNS.csv also writes every student's runs).")
    ch.add_argument("action", choices=ACTIONS, help="what to do")
    ch.add_argument("target", nargs="?", default=None, help="the challenge's id (or, for open, its TOML file)")
    ch.add_argument("out", nargs="?", type=Path, default=None, help="export: the CSV file to write")
    add_run(ch, help="submit: your finished run's id", required=False)
    ch.add_argument("--private", action="store_true", help="board: the private scores, whatever the deadline")
    ch.add_argument("--runs", type=Path, default=None, metavar="FILE", help="export: also every run as CSV in FILE")
    ch.add_argument("--wait", action="store_true", help="submit: wait for the score")
    ch.add_argument("--force", action="store_true", help="export: replace files that exist")
    ch.add_argument("--json", action="store_true", help="JSON output")
    ch.set_defaults(func=cmd_challenge)


def cmd_challenge(args: argparse.Namespace) -> int:
    from ..classroom import load_settings
    from ..store import Store

    if args.action != "list" and not args.target:
        raise ValueError(f"challenge {args.action} needs " + ("a TOML file" if args.action == "open" else "an id"))
    store = Store()
    try:
        return {"list": _list, "open": _open, "submit": _submit, "board": _board, "export": _export}[args.action](
            args, store, load_settings())
    finally:
        store.close()


def _list(args, store, settings) -> int:  # noqa: ANN001 - one signature for every action
    from ..classroom.challenges import list_challenges

    found, problems = list_challenges(store, settings)
    if args.json:
        print(json.dumps({"challenges": [{**c.to_dict(), "open": c.is_open(), "source": c.source} for c in found],
                          "problems": problems}, indent=2))
        return 0
    for c in found:
        state = "open" if c.is_open() else "closed"
        print(f"{c.id:<24} {state:<7} {c.dataset:<7} {c.metric:<9} until {c.deadline_text}  {c.title}")
    for where, why in problems.items():
        print(f"not opened: {why}")
    if not found and not problems:
        print("no challenge yet: `challenge open FILE.toml` (see docs/classroom.md)")
    return 0


def _open(args, store, settings) -> int:  # noqa: ANN001
    from ..classroom.challenges import open_challenge, read_challenge_file

    challenge = read_challenge_file(Path(args.target))
    hold = open_challenge(store, challenge, MACHINE, settings)
    if args.json:
        print(json.dumps({"challenge": challenge.to_dict(), "hidden_images": len(hold.indices),
                          "public_images": len(hold.public), "holdout_seed": hold.seed}, indent=2))
        return 0
    print(f"opened {challenge.id}: {challenge.title}")
    for line in challenge.describe():
        print(f"  {line}")
    print(f"  hidden test split of {challenge.dataset}: {len(hold.indices):,} images ({len(hold.public):,} public), "
          f"seed {hold.seed}")
    return 0


def _submit(args, store, settings) -> int:  # noqa: ANN001
    from ..classroom.challenges import get_challenge
    from ..experiments.challenges import submit_entry
    from ..jobs.follow import follow

    if args.run is None:
        raise ValueError("challenge submit needs --run ID")
    challenge = get_challenge(store, settings, args.target)
    entry_id = submit_entry(store, challenge, args.run, MACHINE)
    entry = store.challenges.entry(entry_id)
    if args.wait and entry.job_id is not None:
        follow(store, [entry.job_id])
        entry = store.challenges.entry(entry_id)
    shown = challenge.shown_score()
    score = getattr(entry, f"{shown}_score")
    if args.json:
        print(json.dumps({"entry": entry.id, "job": entry.job_id, "status": entry.status, "score": shown,
                          "value": score, "error": entry.error}, indent=2))
        return 0 if entry.status != "failed" else 1
    said = f"{shown} {challenge.metric} {score:.4f}" if score is not None else entry.status
    print(f"entry {entry.id}: run {entry.run_id} in {challenge.id} (job {entry.job_id}): {said}"
          + (f" — {entry.error}" if entry.error else ""))
    return 0 if entry.status != "failed" else 1


def _board(args, store, settings) -> int:  # noqa: ANN001
    from ..classroom.challenges import get_challenge
    from ..classroom.challenges_board import board_text, iso, leaderboard

    challenge = get_challenge(store, settings, args.target)
    score = "private" if args.private else challenge.shown_score()
    rows = leaderboard(store.challenges.entries(challenge.id), score)
    if args.json:
        print(json.dumps({"challenge": challenge.id, "score": score, "rows": [
            {"rank": r.rank, "name": r.name, "score": r.score, "run": r.run_id, "kind": r.kind, "params": r.params,
             "epochs": r.epochs, "submitted_at": iso(r.submitted_at)} for r in rows]}, indent=2))
        return 0
    print(board_text(challenge, rows, score))
    return 0


def _export(args, store, settings) -> int:  # noqa: ANN001
    from ..classroom.challenges import get_challenge
    from ..experiments.challenges import grades, runs_table

    if args.out is None:
        raise ValueError("challenge export needs the CSV file to write: challenge export ID OUT.csv")
    challenge = get_challenge(store, settings, args.target)
    written = []
    for path, text in ((args.out, grades(store, challenge)),
                       (args.runs, runs_table(store) if args.runs is not None else None)):
        if path is None:
            continue
        if path.exists() and not args.force:
            raise ValueError(f"{path} exists; give --force to replace it")
        write_atomic(path, text)
        written.append({"path": str(path), "rows": text.count("\n") - 1})
    if args.json:
        print(json.dumps({"challenge": challenge.id, "written": written}, indent=2))
    else:
        for w in written:
            print(f"wrote {w['path']} ({w['rows']} rows)")
    return 0

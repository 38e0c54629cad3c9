"""`store copy FROM TO`: copy every record of a lab's database into another, empty one — the lab home's SQLite file
into a PostgreSQL database (``postgresql://...``) when one server is outgrown, or back. Ids and checkpoints'
paths (relative to the lab home) stay as they are; the checkpoint files stay in the lab home."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    st = sub.add_parser("store", help="the lab's database: `store copy FROM TO` between SQLite and PostgreSQL",
                        description="Without a subcommand: which database this lab uses.")
    st.set_defaults(func=cmd_where)
    st_sub = st.add_subparsers(dest="action", metavar="{copy}")
    cp = st_sub.add_parser("copy", help="copy every record of a lab into an empty database (SQLite <-> PostgreSQL)",
                           description="FROM and TO are each a SQLite file (a lab home's runs.db, or the lab home "
                                       "folder) or a PostgreSQL URL (postgresql://user:password@host:port/name). "
                                       "TO must hold no records; it is created (and its schema made) if need be.")
    cp.add_argument("source", metavar="FROM", help="the lab's database: runs.db (or its folder), or a URL")
    cp.add_argument("target", metavar="TO", help="an empty database: a new runs.db (or folder), or a URL")
    cp.add_argument("--json", action="store_true")
    cp.set_defaults(func=cmd_copy)


def _location(text: str, *, must_exist: bool) -> str | Path:
    """A URL as given; a folder as its ``runs.db``; a SQLite file that must exist (the source) checked."""
    from ..store.dialect import is_url

    if is_url(text):
        return text
    path = Path(text).expanduser()
    if path.is_dir():
        path = path / "runs.db"
    if must_exist and not path.is_file():
        raise ValueError(f"no lab database at {path}: FROM is a lab's runs.db, its folder, or a postgresql:// URL")
    return path.resolve()


def cmd_where(args: argparse.Namespace) -> int:
    """Which database the lab uses here (RESNET_LAB_DB's, password masked, or the lab home's SQLite file)."""
    from ..paths import lab_home
    from ..store import database_url
    from ..store.dialect import shown_url

    url = database_url()
    print(f"PostgreSQL: {shown_url(url)} (RESNET_LAB_DB)" if url else f"SQLite: {lab_home() / 'runs.db'}")
    return 0


def cmd_copy(args: argparse.Namespace) -> int:
    from ..store import SchemaTooNew, Store
    from ..store.copy import copy
    from ..store.dialect import shown_url

    source = _location(args.source, must_exist=True)
    target = _location(args.target, must_exist=False)
    if source == target:
        raise ValueError("FROM and TO are the same database")
    try:
        src = Store(source)
        try:
            dst = Store(target)
        except BaseException:
            src.close()
            raise
    except SchemaTooNew as e:
        raise ValueError(str(e)) from None
    try:
        copied = copy(src.db, dst.db)
    finally:
        src.close()
        dst.close()
    shown = {"from": shown_url(str(source)), "to": shown_url(str(target)), "copied": copied}
    if args.json:
        print(json.dumps(shown, indent=2))
    else:
        total = sum(copied.values())
        print(f"copied {total} records from {shown['from']} to {shown['to']}: "
              + ", ".join(f"{t} {n}" for t, n in copied.items() if n))
    return 0

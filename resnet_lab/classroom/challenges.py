"""Challenges: a teacher sets a dataset, constraints, a metric and a deadline; students submit their own finished
runs, which the lab scores once on a hidden test split (:mod:`resnet_lab.data.holdout`).

A challenge is opened from the Teacher page or the command line (recorded in the store), or written as a TOML file
beside the lessons: ``<lessons folder>/challenges/<id>.toml`` in any of the class's lesson folders
(``settings.lessons_dirs``; the first folder that has an id wins, and a recorded challenge wins over a file)::

    id = "digits-small"                    # [a-z0-9-]{1,40}; must equal the file name
    title = "Digits under 20k parameters"
    description = "markdown-free text shown to students"
    dataset = "digits"                     # one of resnet_lab.data.holdout.SUPPORTED, or "folder:NAME"
    metric = "accuracy"                    # or "macro_f1" (for unbalanced sets)
    deadline = 2026-12-20T18:00:00Z        # a TOML date-time (without an offset: UTC) or an ISO text
    per_day = 3                            # submissions per student per (UTC) day; default 3
    time_budget_s = 600                    # training seconds on the class's device (optional)
    holdout_seed = 0                       # seed of the hidden split, when this dataset has none yet

    [constraints]                          # the keys of CONSTRAINT_KEYS, as a settings file's [bounds] spells them
    max_params = 20000
    max_depth = 20
    max_epochs = 10
    max_train_images = 1000
    max_image_size = 16

Files are hostile input: size-capped, parsed strictly, and every error names the file and the key. Whether a run
may enter is :func:`check_entry` (its messages reuse :class:`~resnet_lab.classroom.bounds.Bounds`'); the leaderboard
and the grades are :mod:`.challenges_board`.
"""

from __future__ import annotations

import datetime as dt
import re
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..checks import check_text as _text, read_small_text
from ..data.holdout import Holdout, cannot_cut, find_holdout, supported, supported_words
from ..data.types import DataConfig
from ..identity import Identity
from ..spec import ModelSpec
from ..train_config import TrainConfig
from .bounds import Bounds, OutOfBounds, param_count
from .settings import ClassSettings

CHALLENGE_ID = re.compile(r"[a-z0-9-]{1,40}")
CHALLENGES_DIR = "challenges"  # in a lesson folder
MAX_FILE_BYTES = 32 * 1024
MAX_TITLE_CHARS = 100
MAX_TEXT_CHARS = 4000
METRICS = {"accuracy": "accuracy", "macro_f1": "macro-F1 (the mean of the classes' F1: fair on unbalanced sets)"}
CONSTRAINT_KEYS = ("max_params", "max_depth", "max_epochs", "max_train_images", "max_image_size")
TOP_KEYS = ("id", "title", "description", "dataset", "metric", "deadline", "per_day", "time_budget_s", "holdout_seed",
            "constraints")
DEFAULT_PER_DAY = 3
PER_DAY_RANGE = (1, 100)
BUDGET_RANGE = (1, 7 * 24 * 3600)


class ChallengeError(ValueError):
    """A challenge that cannot be opened or read; the message names the file (or form) and the key."""


class EntryRefused(ValueError):
    """A run that may not enter a challenge (nothing was queued); the message says which rule and the run's value."""


@dataclass(frozen=True)
class Challenge:
    id: str
    title: str  # shown as text
    dataset: str  # one of resnet_lab.data.holdout.SUPPORTED, or "folder:NAME" (supported())
    metric: str  # a key of METRICS
    deadline: float  # unix time, s: entries until then; private scores shown after
    constraints: Bounds = field(default_factory=Bounds)  # only CONSTRAINT_KEYS set
    per_day: int = DEFAULT_PER_DAY
    time_budget_s: int | None = None  # training seconds (a run's start to its end)
    description: str = ""
    holdout_seed: int = 0
    source: str = "form"  # "form" (recorded in the store) or the TOML file's path

    def is_open(self, now: float | None = None) -> bool:
        return (time.time() if now is None else now) < self.deadline

    def shown_score(self, now: float | None = None) -> str:
        """Which score students see: ``"public"`` while the challenge is open, ``"private"`` after its deadline."""
        return "public" if self.is_open(now) else "private"

    @property
    def deadline_text(self) -> str:
        return dt.datetime.fromtimestamp(self.deadline, dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")

    def describe(self) -> list[str]:
        """One line per rule, for the pages and the command line."""
        lines = [f"Dataset: {self.dataset}", f"Metric: {METRICS[self.metric]}", f"Deadline: {self.deadline_text}",
                 f"Submissions: {self.per_day} a day per student"]
        lines += self.constraints.describe()
        if self.time_budget_s is not None:
            lines.append(f"Training time: up to {self.time_budget_s:,} s")
        return lines

    def to_dict(self) -> dict[str, Any]:
        """The definition as recorded (and as :func:`parse_definition` reads it back)."""
        out: dict[str, Any] = {"id": self.id, "title": self.title, "description": self.description,
                               "dataset": self.dataset, "metric": self.metric,
                               "deadline": dt.datetime.fromtimestamp(self.deadline, dt.timezone.utc).isoformat(),
                               "per_day": self.per_day, "holdout_seed": self.holdout_seed,
                               "constraints": self.constraints.to_dict()}
        if self.time_budget_s is not None:
            out["time_budget_s"] = self.time_budget_s
        return out


# --- reading a definition ----------------------------------------------------------------------------


def parse_definition(raw: Any, where: str = "the challenge", expected_id: str | None = None,
                     source: str = "form") -> Challenge:
    """A challenge from an untrusted mapping (a TOML file's, or a form's); ChallengeError naming ``where``."""
    try:
        return _from_raw(raw, expected_id, source)
    except ValueError as e:
        raise ChallengeError(f"{where}: {e}") from None


def parse_challenge_text(text: str, where: str = "the challenge", expected_id: str | None = None,
                         source: str = "form") -> Challenge:
    """A challenge from TOML text; ChallengeError naming ``where`` (and the key) for anything wrong."""
    if len(text.encode("utf-8")) > MAX_FILE_BYTES:
        raise ChallengeError(f"{where} is larger than {MAX_FILE_BYTES:,} bytes")
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ChallengeError(f"{where} is not valid TOML: {e}") from None
    return parse_definition(raw, where, expected_id, source)


def read_challenge_file(path: str | Path, expected_id: str | None = None) -> Challenge:
    """The challenge in the TOML file ``path`` (size-capped, UTF-8, parsed strictly)."""
    path = Path(path)
    text = read_small_text(path, MAX_FILE_BYTES, "challenge", ChallengeError)
    return parse_challenge_text(text, str(path), expected_id, source=str(path))


def _from_raw(raw: Any, expected_id: str | None, source: str) -> Challenge:
    if not isinstance(raw, dict):
        raise ValueError(f"a challenge must be a table of keys, got {type(raw).__name__}")
    unknown = sorted(set(map(str, raw)) - set(TOP_KEYS))
    if unknown:
        raise ValueError(f"unknown key(s) {', '.join(unknown)}; allowed: {', '.join(TOP_KEYS)}")
    for key in ("id", "title", "dataset", "deadline"):
        if key not in raw:
            raise ValueError(f"{key} is missing")
    cid = raw["id"]
    if not isinstance(cid, str) or not CHALLENGE_ID.fullmatch(cid):
        raise ValueError(f"id={str(cid)[:60]!r} is not a challenge id: use 1 to 40 lower-case letters, digits and '-'")
    if expected_id is not None and cid != expected_id:
        raise ValueError(f"id={cid!r} must equal the file's name ({expected_id}.toml)")
    dataset = raw["dataset"]
    if not supported(dataset):
        raise ValueError(f"dataset={str(dataset)[:60]!r}: a challenge's hidden test split can be cut of "
                         f"{supported_words()}")
    metric = raw.get("metric", "accuracy")
    if metric not in METRICS:
        raise ValueError(f"metric={str(metric)[:60]!r} is not a metric; choose one of {', '.join(METRICS)}")
    table = raw.get("constraints", {})
    if not isinstance(table, dict):
        raise ValueError(f"constraints must be a table ([constraints]), got {type(table).__name__}")
    bad = sorted(set(map(str, table)) - set(CONSTRAINT_KEYS))
    if bad:
        raise ValueError(f"[constraints]: unknown key(s) {', '.join(bad)}; allowed: {', '.join(CONSTRAINT_KEYS)}")
    constraints = Bounds.from_mapping(table, "[constraints]")
    return Challenge(
        id=cid, title=_text("title", raw["title"], MAX_TITLE_CHARS, required=True), dataset=dataset, metric=metric,
        deadline=_deadline(raw["deadline"]), constraints=constraints,
        per_day=_int("per_day", raw.get("per_day", DEFAULT_PER_DAY), *PER_DAY_RANGE),
        time_budget_s=None if raw.get("time_budget_s") is None else _int("time_budget_s", raw["time_budget_s"],
                                                                         *BUDGET_RANGE),
        description=_text("description", raw.get("description", ""), MAX_TEXT_CHARS),
        holdout_seed=_int("holdout_seed", raw.get("holdout_seed", 0), 0, 2**31 - 1), source=source)


def _int(name: str, value: Any, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ValueError(f"{name} must be a whole number from {lo:,} to {hi:,}, got {str(value)[:60]!r}")
    return value


def _deadline(value: Any) -> float:
    """A TOML date-time, or ISO 8601 text; without an offset it is UTC. A date alone means its end (23:59:59 UTC)."""
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"deadline={value[:60]!r} is not a date-time such as 2026-12-20T18:00:00Z") from None
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.timezone.utc)
        return value.timestamp()
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day, 23, 59, 59, tzinfo=dt.timezone.utc).timestamp()
    raise ValueError(f"deadline must be a date-time such as 2026-12-20T18:00:00Z, got {type(value).__name__}")


# --- finding challenges ------------------------------------------------------------------------------


def challenge_files(settings: ClassSettings) -> dict[str, Path]:
    """Challenge id -> its file, from every lesson folder's ``challenges/`` (the first folder with an id wins)."""
    out: dict[str, Path] = {}
    for folder in settings.lessons_dirs:
        folder = Path(folder) / CHALLENGES_DIR
        if not folder.is_dir():
            continue
        for p in sorted(folder.glob("*.toml")):
            if CHALLENGE_ID.fullmatch(p.stem) and p.is_file() and not p.is_symlink():
                out.setdefault(p.stem, p)
    return out


def list_challenges(store: Any, settings: ClassSettings) -> tuple[list[Challenge], dict[str, str]]:
    """(every challenge that opens, sorted by deadline; {id or file: why it does not open}): the recorded ones and
    the files. A file with a recorded challenge's id is reported, not read."""
    out: dict[str, Challenge] = {}
    problems: dict[str, str] = {}
    for row in store.challenges.list():
        try:
            out[row.id] = parse_definition(row.definition, f"challenge {row.id!r}", row.id)
        except ChallengeError as e:
            problems[row.id] = str(e)
    for cid, path in challenge_files(settings).items():
        if cid in out:
            problems[str(path)] = f"{path}: a challenge {cid!r} was opened from the Teacher page; this file is ignored"
            continue
        try:
            out[cid] = read_challenge_file(path, cid)
        except ChallengeError as e:
            problems[str(path)] = str(e)
    for cid, c in list(out.items()):  # a dataset whose hidden split cannot be cut (its files are missing): not listed
        why = cannot_cut(c.dataset)
        if why is not None:
            where = cid if c.source == "form" else c.source
            problems[where] = f"{where}: {why}"
            del out[cid]
    return sorted(out.values(), key=lambda c: (c.deadline, c.id)), problems


def get_challenge(store: Any, settings: ClassSettings, challenge_id: Any) -> Challenge:
    """The challenge ``challenge_id`` (hostile: only an id is looked up); ChallengeError naming the known ones."""
    if not isinstance(challenge_id, str) or not CHALLENGE_ID.fullmatch(challenge_id):
        raise ChallengeError(f"{str(challenge_id)[:60]!r} is not a challenge id")
    row = store.challenges.get(challenge_id)
    if row is not None:
        return parse_definition(row.definition, f"challenge {row.id!r}", row.id)
    path = challenge_files(settings).get(challenge_id)
    if path is not None:
        return read_challenge_file(path, challenge_id)
    known, _ = list_challenges(store, settings)
    raise ChallengeError(f"there is no challenge {challenge_id!r} (challenges: "
                         f"{', '.join(c.id for c in known) or 'none'})")


def open_challenge(store: Any, challenge: Challenge, by: Identity, settings: ClassSettings,
                   now: float | None = None) -> Holdout:
    """Record ``challenge`` (opened by a teacher from a form or a file) and make sure its dataset's hidden split
    exists (cut once with the challenge's seed). Returns that hidden split's record."""
    from ..data.holdout import create_holdout

    if not by.teacher:
        raise ChallengeError("only a teacher may open a challenge")
    if challenge.id in challenge_files(settings):
        raise ChallengeError(f"a challenge file with the id {challenge.id!r} exists already; choose another id")
    hold = create_holdout(challenge.dataset, challenge.holdout_seed)
    store.challenges.add(challenge.id, challenge.title, challenge.to_dict(), by.owner,
                         time.time() if now is None else now)
    return hold


def ensure_holdout(challenge: Challenge) -> Holdout:
    """The challenge's dataset's hidden split, cut now when none exists (a file challenge seen for the first time)."""
    from ..data.holdout import create_holdout

    return find_holdout(challenge.dataset) or create_holdout(challenge.dataset, challenge.holdout_seed)


# --- may this run enter? -------------------------------------------------------------------------------


@dataclass(frozen=True)
class EntryFacts:
    """What an entry records of its run."""

    params: int
    epochs: int
    skip: bool


def check_entry(challenge: Challenge, run: Any, who: Identity, hold: Holdout | None,
                now: float | None = None, train_s: float | None = None) -> EntryFacts:
    """Raise :class:`EntryRefused` unless ``who`` may enter ``run`` into ``challenge`` now: the challenge is open,
    the run is theirs, finished and trained on the challenge's dataset after its hidden split was cut, not
    fine-tuned from other weights, and within every constraint (each broken one named with the run's value).
    ``train_s``: the run's training time as its engine logged it (``train_s``: the time its workers trained,
    across resumes); a run that did not log it is timed from its first start to its end."""
    now = time.time() if now is None else now
    if not challenge.is_open(now):
        raise EntryRefused(f"the challenge {challenge.title!r} closed at {challenge.deadline_text}")
    if run.owner != who.owner:
        raise EntryRefused(f"run {run.id} is someone else's: only your own runs can be submitted")
    if run.status != "done":
        raise EntryRefused(f"run {run.id} is {run.status}: only a finished run (done) can be submitted")
    if not (run.ckpt_best or run.ckpt_last):
        raise EntryRefused(f"run {run.id} has no checkpoint to score")
    if run.finetune:
        raise EntryRefused(f"run {run.id} was fine-tuned from other weights, which may have seen the hidden images; "
                           "train a model from scratch for the challenge")
    data = DataConfig.from_dict(run.data)
    if data.name != challenge.dataset:
        raise EntryRefused(f"run {run.id} was trained on {data.name}; this challenge is on {challenge.dataset}")
    if hold is None or run.created_at < hold.created_at:
        raise EntryRefused(f"run {run.id} was started before this challenge's hidden test split was cut, so it may "
                           "have trained on those images; train it again (the same settings) and submit the new run")
    spec = ModelSpec.from_dict(run.spec)
    train = TrainConfig.from_dict(run.train)
    try:
        challenge.constraints.check_training(spec, data, train)
    except OutOfBounds as e:
        raise EntryRefused(str(e).replace("this class's bound", "this challenge's bound")) from None
    if challenge.time_budget_s is not None:
        took = train_s if train_s is not None else (run.duration_s or 0.0)
        if took > challenge.time_budget_s:
            raise EntryRefused(f"Training time {took:,.0f} s is above this challenge's bound: allowed up to "
                               f"{challenge.time_budget_s:,} s.")
    return EntryFacts(params=param_count(spec), epochs=train.epochs, skip=bool(spec.skip))


def eligible_runs(challenge: Challenge, runs: list[Any], who: Identity, hold: Holdout | None,
                  entered: set[int], now: float | None = None, train_s: dict[int, float] | None = None,
                  ) -> list[tuple[Any, str | None]]:
    """``who``'s finished runs on the challenge's dataset, each with why it may not enter (None: it may);
    ``train_s``: run id -> its logged training time (see :func:`check_entry`)."""
    out = []
    for r in runs:
        if r.owner != who.owner or r.status != "done" or r.data.get("name") != challenge.dataset:
            continue
        if r.id in entered:
            out.append((r, f"run {r.id} was submitted already"))
            continue
        try:
            check_entry(challenge, r, who, hold, now, (train_s or {}).get(r.id))
            out.append((r, None))
        except (EntryRefused, ValueError) as e:
            out.append((r, str(e)))
    return out


def utc_day(t: float) -> str:
    """The UTC date of unix time ``t`` (the per-day limit's day)."""
    return dt.datetime.fromtimestamp(t, dt.timezone.utc).strftime("%Y-%m-%d")


__all__ = ["CHALLENGE_ID", "CONSTRAINT_KEYS", "Challenge", "ChallengeError", "EntryFacts", "EntryRefused", "METRICS",
           "challenge_files", "check_entry", "eligible_runs", "ensure_holdout", "get_challenge", "list_challenges",
           "open_challenge", "parse_challenge_text", "parse_definition", "read_challenge_file", "utc_day"]

"""What several commands share: a run and its twin as inspectable subjects, a class by index or name,
a PNG written atomically, one line per run, and one spelling per argument (``--run ID``, ``--twin``, ``--n N``,
with the old spellings still read for one release)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

from ..paths import atomic_path


def run_subjects(run_id: int, twin: bool):
    """The run (and its partner, with ``twin``) from the store, each with a checkpoint, and their inspectable
    subjects; a ValueError says which run is missing or has no checkpoint."""
    from ..analysis import from_run
    from ..analysis.subject import run_and_twin
    from ..store import Store

    store = Store()
    try:
        runs = run_and_twin(store.runs.get(run_id), store.runs.partner if twin else None,
                            alone="train with --twin to get one")
    finally:
        store.close()
    return runs, [from_run(r) for r in runs]


def class_index(text: str, class_names: Sequence[str]) -> int:
    """--target: a class index (an integer) or a class name (exact, else case-insensitive)."""
    names = list(class_names)
    listing = ", ".join(f"{i} {n}" for i, n in enumerate(names))
    try:
        i = int(text)
    except ValueError:
        if text in names:
            return names.index(text)
        folded = [n.casefold() for n in names]
        if text.casefold() in folded:
            return folded.index(text.casefold())
        raise ValueError(f"unknown target class {text!r}; one of: {listing}") from None
    if not 0 <= i < len(names):
        raise ValueError(f"target class {i} is out of range: the model has {len(names)} classes ({listing})")
    return i


def write_png_atomic(image: Any, out: Path) -> None:
    """Save a PIL image as PNG at ``out``, atomically (:func:`resnet_lab.paths.atomic_path`: no half-written file)."""
    with atomic_path(out) as tmp:
        image.save(tmp, format="PNG")


def run_row(r: Any, forecast: Any = None) -> dict:
    """A run as JSON: its record, and where its job stands in the queue (for queued and running runs)."""
    row = {"id": r.id, "job": r.job_id, "partner": r.partner_id, "kind": r.kind, "name": r.name, "status": r.status,
           "device": r.device, "step": r.step, "total_steps": r.total_steps, "best_val_acc": r.best.get("val/acc"),
           "last": r.last, "error": r.error, "checkpoint": r.ckpt_best, "duration_s": r.duration_s}
    if forecast is not None:
        row["queue"] = forecast.to_dict()
    return row


# --- One spelling per argument ---------------------------------------------------------------------------------
# A run is ``--run ID``, the twin ``--twin``, a count ``--n``. The old spellings (a positional RUN_ID, --plain-twin,
# --plain, --images) are still read for one release: hidden from --help, and a note on stderr says the new one.

OLD_FORM_GOES = "the old form goes in the next release"
JOB_FLAG = -1  # ``--job`` given bare (the old ``stop ID --job``): the run id given is a job's


class LabParser(argparse.ArgumentParser):
    """An ArgumentParser that, once it has parsed its arguments, runs the checks they registered in
    ``after_parse`` (each ``check(parser, namespace)``; e.g. that a run was given, as ``--run`` or the old way).
    Subcommand parsers are of the same class, so each runs its own checks and refuses with its own usage."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.after_parse: list[Callable[[argparse.ArgumentParser, argparse.Namespace], None]] = []

    def parse_known_args(self, args=None, namespace=None):  # noqa: ANN001 - argparse's own signature
        namespace, extras = super().parse_known_args(args, namespace)
        for check in self.after_parse:
            check(self, namespace)
        return namespace, extras


def deprecation_note(namespace: argparse.Namespace, text: str) -> None:
    """Write ``note: TEXT`` on stderr, once per parse (the namespace remembers the notes it has said)."""
    said = namespace.__dict__.setdefault("_notes_said", set())
    if text not in said:
        said.add(text)
        print(f"note: {text}", file=sys.stderr)


def _command(parser: argparse.ArgumentParser) -> str:
    """The subcommand's name, the last word of its prog ("python -m resnet_lab stop" -> "stop")."""
    return parser.prog.split()[-1]


class _OldFlag(argparse.Action):
    """A deprecated spelling of a flag: stores as the canonical flag does and notes the new spelling on stderr."""

    def __init__(self, option_strings: Sequence[str], dest: str, new: str, store_const: Any = None,
                 **kwargs: Any) -> None:
        self.new, self.store_const = new, store_const
        super().__init__(option_strings, dest, nargs=0 if store_const is not None else None, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):  # noqa: ANN001 - argparse's own signature
        setattr(namespace, self.dest, self.store_const if self.store_const is not None else values)
        deprecation_note(namespace, f"`{option_string}` is now `{self.new}`; {OLD_FORM_GOES}")


class _OldRunPositional(argparse.Action):
    """The run given the old way, as a positional RUN_ID: kept aside for :func:`_check_run`, which notes it."""

    def __call__(self, parser, namespace, values, option_string=None):  # noqa: ANN001 - argparse's own signature
        setattr(namespace, self.dest, values)


def add_run(parser: argparse.ArgumentParser, help: str = "a run's id (see `runs`)", required: bool = True,
            old_positional: bool = False, job: str | None = None, container: Any = None) -> None:
    """``--run ID`` (dest ``run``, an int). ``old_positional`` also reads the old ``COMMAND ID`` form (hidden,
    with a note on stderr); add it before the command's other positionals, as it stood first. ``job`` (its help)
    adds ``--job ID``, the other thing the command may act on: one of ``--run``/``--job`` is then needed, and the
    old ``COMMAND ID --job`` still reads as ``--job ID``. ``container``: a group to add ``--run`` to."""
    (container or parser).add_argument("--run", type=int, metavar="ID", default=None,
                                       help=help + (" (required)" if required and job is None else ""))
    if old_positional:
        parser.add_argument("run_positional", type=int, nargs="?", default=None, action=_OldRunPositional,
                            help=argparse.SUPPRESS)
    if job is not None:
        parser.add_argument("--job", type=int, nargs="?", const=JOB_FLAG, default=None, metavar="ID", help=job)
    parser.after_parse.append(lambda p, ns: _check_run(p, ns, required))


def _check_run(parser: argparse.ArgumentParser, ns: argparse.Namespace, required: bool) -> None:
    """After parsing: fold the old positional into ``run`` (with its note), resolve a bare ``--job``, and refuse
    a command that needs a run (or a job) and got none, or got two different ones."""
    old = ns.__dict__.pop("run_positional", None)
    cmd = _command(parser)
    job = getattr(ns, "job", None)
    if old is not None:
        if ns.run is not None and ns.run != old:
            parser.error(f"two runs given: {old} and --run {ns.run}")
        if job == JOB_FLAG:
            deprecation_note(ns, f"`{cmd} {old} --job` is now `{cmd} --job {old}`; {OLD_FORM_GOES}")
        else:
            deprecation_note(ns, f"`{cmd} {old}` is now `{cmd} --run {old}`; {OLD_FORM_GOES}")
        ns.run = old
    if job == JOB_FLAG:
        if ns.run is None:
            parser.error("--job needs a job id: --job ID")
        ns.job, ns.run = ns.run, None
    elif job is not None and ns.run is not None:
        parser.error("give --run ID or --job ID, not both")
    if required and ns.run is None and job is None:
        parser.error("the following arguments are required: --run" + (" (or --job)" if "job" in ns else ""))


def add_twin(parser: argparse.ArgumentParser, help: str, default: bool = False, old: Sequence[str] = ()) -> None:
    """``--twin`` (dest ``twin``): also the run's twin (plain <-> ResNet). ``default=True`` makes it
    ``--twin/--no-twin``, on unless turned off. ``old``: deprecated spellings, hidden, each noted on stderr."""
    if default:
        parser.add_argument("--twin", action=argparse.BooleanOptionalAction, default=True, help=help)
    else:
        parser.add_argument("--twin", action="store_true", help=help)
    for spelling in old:
        parser.add_argument(spelling, dest="twin", action=_OldFlag, new="--twin", store_const=True,
                            help=argparse.SUPPRESS)


def add_count(parser: argparse.ArgumentParser, default: int, help: str, old: Sequence[str] = ()) -> None:
    """``--n N`` (dest ``n``, an int): how many images a command uses. ``old``: deprecated spellings, hidden,
    each noted on stderr."""
    parser.add_argument("--n", type=int, default=default, metavar="N", help=help)
    for spelling in old:
        parser.add_argument(spelling, dest="n", type=int, action=_OldFlag, new="--n", metavar="N",
                            help=argparse.SUPPRESS)

"""Who is acting: an :class:`Identity` on every request that changes a job, a run or a dataset.

Everyone may *view* everything; only the owner of a record, or a teacher, may stop, resume, move or
delete it. The decision is taken here and in the store/jobs layer that calls :func:`require`, never by
hiding a button: a page (or a crafted widget state, or a URL) that asks for someone else's job is
refused with :class:`NotAllowed`. How a browser session comes to have an identity (a login, a trusted
proxy header, a class code) is :mod:`resnet_lab.classroom`; this module only holds the facts.
"""

from __future__ import annotations

from dataclasses import dataclass

LOCAL = "local"  # the owner of everything made by the CLI and in single-user mode (this machine's user)


@dataclass(frozen=True)
class Identity:
    """A person (or the machine) acting on the lab."""

    owner: str  # stable key stored on records: "local", "class:<person id>", "login:<email>", "proxy:<name>"
    name: str  # display name, untrusted text (always shown as text, never as markup)
    teacher: bool = False  # may act on everyone's jobs, runs and datasets
    source: str = "local"  # how it was established: "local", "class", "login", "proxy", "teacher"

    def may_manage(self, owner: str | None) -> bool:
        """May this identity stop, resume, move or delete a record owned by ``owner``?"""
        return self.teacher or (owner is not None and owner == self.owner)


MACHINE = Identity(LOCAL, "this machine", teacher=True, source="local")
"""The CLI, and the one person of a lab that is not set up for a class: may do everything."""


class NotAllowed(PermissionError):
    """An action on a record that belongs to someone else (nothing was changed)."""


def require(who: Identity, owner: str | None, action: str, what: str, owner_name: str = "") -> None:
    """Raise :class:`NotAllowed` unless ``who`` may ``action`` (a verb: "stop", "delete") ``what`` ("job 12")
    owned by ``owner``."""
    if not isinstance(who, Identity):
        raise TypeError(f"an Identity is needed to {action} {what}, got {type(who).__name__}")
    if not who.may_manage(owner):
        whose = f"{owner_name}'s" if owner_name else "someone else's"
        raise NotAllowed(f"You may not {action} {what}: it is {whose}. Only its owner or a teacher may.")

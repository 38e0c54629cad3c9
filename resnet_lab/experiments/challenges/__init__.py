"""Challenges as background work: an entry is scored once on the hidden test split by a job on the one queue
(:data:`.jobs.CHALLENGE_JOB`); what may enter and the leaderboard are :mod:`resnet_lab.classroom.challenges`."""

from .jobs import CHALLENGE_JOB, grades, runs_table, score_run, submit_entry

__all__ = ["CHALLENGE_JOB", "grades", "runs_table", "score_run", "submit_entry"]

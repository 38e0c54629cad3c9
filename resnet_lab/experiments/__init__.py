"""Experiments: the lab's studies as background work — submit their jobs, follow them, summarise them.

Above :mod:`resnet_lab.analysis` (the math) and :mod:`resnet_lab.jobs` (the queue):
:mod:`.degradation` (four twin runs and a verdict), :mod:`.landscape` (loss-landscape slices as a job
whose result is kept with the run), :mod:`.learned` (did these runs learn? the check before any conclusion).
"""

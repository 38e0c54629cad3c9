"""Downloads as background work: a dataset or a weights file of the catalogue fetched by a job on the one queue.

What can be fetched, from where, and how a file is verified before it is opened: :mod:`resnet_lab.data.catalogue`
and :mod:`resnet_lab.data.fetch`. This package makes it a job (:data:`DOWNLOAD`, on the ``net`` slot, so a download
never waits behind a training run), one per file for the whole lab, and decides who may start one
(:func:`may_start`) and what a class needs before its lesson (:func:`class_needs`).
"""

from .job import (DOWNLOAD, DownloadRefused, Wanted, class_needs, download_job, may_start, prepare, status_rows,
                  submit_download)

__all__ = ["DOWNLOAD", "DownloadRefused", "Wanted", "class_needs", "download_job", "may_start", "prepare",
           "status_rows", "submit_download"]

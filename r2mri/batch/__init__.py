"""Cohorts: many exams in one run, on this machine or a Dask cluster.

:func:`run` finds the exams (:func:`discover`: DICOM study trees, BIDS-like NIfTI
trees, manifest CSVs), brings each exam's output folder ``OUT/<subject>/<session>/`` up
to date (the same files as ``r2mri analyze``; exams whose inputs, settings and r2mri
version did not change are reused) and writes the cohort table ``OUT/cohort.csv`` /
``cohort.json``. A bad exam becomes a ``failed`` row with its reason; the others go on.
See docs/batch.md.

Modules: ``_discover`` (finding exams), ``_exam`` (one exam), ``_pool`` (local
processes), ``_dask`` (Dask futures), ``_cohort`` (the table), ``_deid``
(de-identification), ``_run`` (:func:`run`).
"""

from __future__ import annotations

from ._cohort import COLUMNS, read_cohort
from ._discover import Exam, Skipped, discover
from ._run import ANALYZE_OPTIONS, CohortResult, run

__all__ = ["run", "discover", "Exam", "Skipped", "CohortResult", "COLUMNS", "ANALYZE_OPTIONS", "read_cohort"]

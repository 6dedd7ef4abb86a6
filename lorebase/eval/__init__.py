"""Evaluation: retrieval metrics, RAGAS and reports."""

import os

# Before anything here imports ragas: it sends usage analytics unless told not to.
os.environ.setdefault("RAGAS_DO_NOT_TRACK", "true")

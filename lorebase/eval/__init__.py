"""Evaluation: retrieval metrics, RAGAS and reports."""

"""Scheduled upkeep: tracked sources are synced and ingested on their schedules, QA pairs follow,
and enough new validated pairs retrain, evaluate and (by the gate) promote a LoRA adapter.

Modules: ``tracked`` (which sources, from settings and the API), ``changes`` (the sync step: what
changed since the last ingest), ``jobs`` (one function per step), ``pipeline`` (steps in order, each
a JobRun, with locks and retries), ``history`` (JobRun rows), ``locks`` (one job of a kind at a
time across processes), ``served_generator`` (the server's generator used from a job thread),
``service`` (APScheduler with its jobs persisted in the lorebase database). See docs/scheduler.md.
"""

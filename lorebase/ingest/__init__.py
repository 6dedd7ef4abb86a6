"""Ingestion: lecture transcripts and repository sources into traceable sources and chunks."""

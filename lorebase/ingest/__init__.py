"""Ingestion: lecture transcripts and repository sources into traceable sources and chunks.

One folder per kind of source, each with its reader: ``transcripts/`` (transcript files and recordings),
``git/`` (a repository's files and commits; ``files/`` cuts a file's text into chunks) and ``github/``
(issues and pull requests). A reader yields the events of ``records``; ``resolve`` picks the reader for a
SOURCE argument and ``service`` applies the events to the store."""

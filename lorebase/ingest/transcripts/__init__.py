"""Lectures as sources: transcript files (WebVTT, SRT, plain text, JSON) and recordings transcribed offline,
one timed source per lecture, cut into chunks that end where a thought ends and cite ``lecture @ mm:ss``."""

"""lorebase: question answering over courses and codebases, with traceable citations."""

__version__ = "0.1.0"

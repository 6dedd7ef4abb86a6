"""A file's text, whatever brought it in: whether it is text at all, and how code and documentation are cut
into chunks with exact line ranges. Used by the repository reader (``ingest.git``); nothing here runs git."""

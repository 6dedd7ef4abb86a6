"""Git repositories as sources: the safe git command line, which files of a commit's tree are read and as
what, and commits (message, files, trimmed diff). Cutting the files' text is ``ingest.files``'s part."""

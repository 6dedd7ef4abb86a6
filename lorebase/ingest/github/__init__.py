"""GitHub issues and pull requests as sources: read from the REST API (incrementally, within its rate
limits) or from an exported JSON file, both brought into one thread shape and cut into discussion chunks."""

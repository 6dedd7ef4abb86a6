"""Domain errors. The API maps each to an HTTP status in one place (lorebase.api.errors)."""

from __future__ import annotations


class LorebaseError(Exception):
    """Base of every error lorebase raises on purpose; its message is meant for the user."""

    code = "lorebase_error"


class SettingsError(LorebaseError):
    code = "invalid_settings"


class ModelNotAvailable(LorebaseError):
    """A model is missing: the message names the package to install or the setting to change."""

    code = "model_not_found"


class StoreError(LorebaseError):
    code = "store_error"


class NotFound(LorebaseError):
    code = "not_found"


class InvalidInput(LorebaseError):
    code = "invalid_request_error"


class NotText(InvalidInput):
    """A file that should be text holds binary content (a NUL, or a share of control characters);
    readers skip it with this reason rather than fail."""

    code = "not_text"


class Conflict(LorebaseError):
    """The request clashes with the current state, e.g. reviewing feedback that was already reviewed."""

    code = "conflict"


class IngestBusy(Conflict):
    """An ingest run is already in progress in this server; one runs at a time."""

    code = "ingest_busy"


class UpstreamError(LorebaseError):
    """A remote service (the GitHub API) refused or failed a request; the message says why and what to check."""

    code = "upstream_error"


# --- generation (the API maps: UnknownModel 404, PromptTooLong 400, EngineUnavailable 503, Overloaded 429) ---


class UnknownModel(LorebaseError):
    """The request named a model that is neither the base model nor a loaded adapter."""

    code = "model_not_found"


class PromptTooLong(LorebaseError):
    """The prompt does not fit the model's context; the message states the limit and the prompt size."""

    code = "context_length_exceeded"


class EngineUnavailable(LorebaseError):
    """The generator cannot serve now: the model server is down, starting or unreachable.

    ``retry_after_s`` is set when the wait is expected to end by itself (start-up, a restart); the
    API sends it as ``Retry-After``."""

    code = "engine_unavailable"

    def __init__(self, message: str, *, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class Overloaded(LorebaseError):
    """Every generation slot and every queue place is taken; try again shortly."""

    code = "overloaded"

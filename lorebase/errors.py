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

"""Who may use the chat UI.

With `ui.password` set, Chainlit's password login checks `ui.username`/`ui.password`. Without it
(allowed only on a loopback address) there is no login page: Chainlit's header login signs every
visitor in as one local user, so conversations are still kept per user and can be resumed.
Either way Chainlit signs its sessions with CHAINLIT_AUTH_SECRET.
"""

from __future__ import annotations

import hmac
import os
import secrets
from pathlib import Path

from lorebase.settings import Settings

LOCAL_USER = "local"
SECRET_ENV = "CHAINLIT_AUTH_SECRET"


def session_secret(settings: Settings, root: Path) -> str:
    """CHAINLIT_AUTH_SECRET when set, else ui.auth_secret, else a random one kept in the UI
    folder of the data home (so sessions survive restarts)."""
    if os.environ.get(SECRET_ENV):
        return os.environ[SECRET_ENV]
    if settings.ui.auth_secret is not None:
        return settings.ui.auth_secret.get_secret_value()
    path = root / ".auth-secret"
    if not path.is_file():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(48))
    return path.read_text().strip()


def credentials_match(settings: Settings, username: str, password: str) -> bool:
    if settings.ui.password is None:
        return False
    # compare both in full, whatever matches first: timing reveals neither
    user_ok = hmac.compare_digest(username.encode(), settings.ui.username.encode())
    pass_ok = hmac.compare_digest(password.encode(), settings.ui.password.get_secret_value().encode())
    return user_ok and pass_ok


def configure(settings: Settings, root: Path) -> None:
    """Install the login that `settings` asks for into Chainlit's (process-wide) configuration."""
    import chainlit as cl
    from chainlit.config import config

    os.environ[SECRET_ENV] = session_secret(settings, root)
    config.code.password_auth_callback = None
    config.code.header_auth_callback = None
    if settings.ui.password is not None:

        async def password_login(username: str, password: str) -> cl.User | None:
            if credentials_match(settings, username, password):
                return cl.User(identifier=settings.ui.username, metadata={"provider": "password"})
            return None

        cl.password_auth_callback(password_login)
    else:

        async def local_login(headers: object) -> cl.User | None:
            return cl.User(identifier=LOCAL_USER, metadata={"provider": "local"})

        cl.header_auth_callback(local_login)

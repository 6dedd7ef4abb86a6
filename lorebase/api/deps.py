"""Small request-scoped helpers shared by the routes."""

from __future__ import annotations

from fastapi import Request

from lorebase.services import Services


def services(request: Request) -> Services:
    return request.app.state.services

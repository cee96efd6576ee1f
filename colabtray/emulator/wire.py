"""Response shapes shared by the emulated Google hosts."""

from __future__ import annotations

import html
import json
from typing import Any

from aiohttp import web

XSSI_PREFIX = ")]}'\n"

_STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    412: "FAILED_PRECONDITION",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}


def xssi_json(data: Any, status: int = 200) -> web.Response:
    """A JSON body behind the ``)]}'`` line, as the colab host and GAPI send them."""
    return web.Response(
        status=status,
        text=XSSI_PREFIX + json.dumps(data, separators=(",", ":")),
        content_type="application/json",
        charset="utf-8",
    )


def google_error(status: int, message: str, reason: str | None = None) -> web.Response:
    """A Google API error body, plain JSON: ``{"error": {code, message, status}}``."""
    error: dict[str, Any] = {
        "code": status,
        "message": message,
        "status": _STATUS_NAMES.get(status, "UNKNOWN"),
    }
    if reason:
        error["details"] = [
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": reason,
                "domain": "googleapis.com",
            }
        ]
    headers = {"WWW-Authenticate": 'Bearer realm="https://accounts.google.com/"'}
    return web.json_response(
        {"error": error}, status=status, headers=headers if status == 401 else None
    )


def oauth_error(status: int, error: str, description: str) -> web.Response:
    """An OAuth 2 error as Google's token endpoint writes it."""
    return web.json_response(
        {"error": error, "error_description": description},
        status=status,
        headers={"Cache-Control": "no-store", "Pragma": "no-cache"},
    )


def html_page(status: int, title: str, body_html: str) -> web.Response:
    """A bare HTML page for the browser-facing parts (consent screens, error pages)."""
    text = (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title></head>"
        f"<body><h1>{html.escape(title)}</h1>{body_html}</body></html>"
    )
    return web.Response(status=status, text=text, content_type="text/html")

"""Webhooks: one bounded JSON POST (a generic webhook, or a Slack-compatible incoming webhook).

The URL is a secret (a Slack incoming-webhook URL is its own credential): it never appears in an
error, a log line or a metric; failures name the HTTP status or the error's type only.
"""

from __future__ import annotations

import json
from typing import Any

from tagrelay.adapters.http import DeadlineExceeded, bounded_session, deadline, read_capped

CONNECT_TIMEOUT_SECONDS = 3.0
DEADLINE_SECONDS = 5.0
MAX_ANSWER_BYTES = 64 * 1024


class WebhookFailed(Exception):
    """The webhook did not accept the message (the message names no URL)."""


def post_json(url: str, document: dict[str, Any]) -> None:
    """POST ``document``; 2xx is delivered, anything else raises WebhookFailed (the caller retries)."""
    import requests

    session = bounded_session(user_agent="tagrelay-notifications")
    try:
        with deadline(DEADLINE_SECONDS):
            response = session.post(
                url,
                data=json.dumps(document).encode(),
                headers={"Content-Type": "application/json"},
                timeout=(CONNECT_TIMEOUT_SECONDS, DEADLINE_SECONDS),
                stream=True,
                allow_redirects=False,
            )
            read_capped(response, MAX_ANSWER_BYTES)
    except (requests.RequestException, DeadlineExceeded, OSError) as error:
        raise WebhookFailed(f"webhook unreachable ({type(error).__name__})") from None
    finally:
        session.close()
    if not 200 <= response.status_code < 300:
        raise WebhookFailed(f"webhook answered HTTP {response.status_code}")

"""FakeWebhooks: the webhook channel's one POST (runtime.Adapters.post_webhook) in memory.

Each accepted document is kept by URL, in order; ``faults`` on ``post`` make the receiver fail (a 5xx,
a timeout) as devstack/webhook_listener.py's ``fail_next`` does on the local stack.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tests.fakes.faults import Faults


@dataclass
class FakeWebhooks:
    received: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    faults: Faults = field(default_factory=lambda: Faults("webhook"))

    def post(self, url: str, document: dict[str, Any]) -> None:
        self.faults.before("post")
        self.received.setdefault(url, []).append(document)

    def messages(self, url: str | None = None) -> list[dict[str, Any]]:
        """What ``url`` received (every URL's, in URL order, when None)."""
        if url is not None:
            return list(self.received.get(url, []))
        return [document for documents in self.received.values() for document in documents]

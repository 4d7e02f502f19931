"""What each channel receives for a Delivery: pure functions of the
delivery's payload (no I/O). The webhook schema is documented, and kept
stable, in docs/notifications.md; `SCHEMA_VERSION` changes only when a field
changes meaning or goes away (new fields may be added in the same version).
"""

import hashlib
import hmac
import json

SCHEMA_VERSION = 1
_LINK_TITLES = {"approve": "Review and approve", "run": "Open the run", "cluster": "Open the failing cluster",
                "placement": "Open the placement", "overview": "Open Fleet UI"}


def webhook_body(delivery) -> dict:
    """The generic webhook's JSON document."""
    payload = dict(delivery.payload)
    return {"version": SCHEMA_VERSION, "type": delivery.kind, "idempotencyKey": delivery.key,
            "occurredAt": payload.pop("occurredAt", ""), "subscription": delivery.subscription.name,
            "summary": payload.pop("summary", ""), **payload}


def encode(body: dict) -> bytes:
    """The exact bytes sent (and signed): compact, keys sorted."""
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """`sha256=<hex>`: HMAC-SHA256 over `<timestamp>.<body>` with the
    subscription's secret (docs/notifications.md shows how to verify)."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"sha256={mac.hexdigest()}"


def _facts(delivery) -> list[tuple[str, str]]:
    """(label, value) pairs a person reads first: run, stage, state…"""
    payload = delivery.payload
    run = payload.get("run") or {}
    facts = [("Event", delivery.get_kind_display())]
    if run.get("name"):
        facts.append(("Run", f"{run['namespace']}/{run['name']}" if run.get("namespace") else run["name"]))
    if payload.get("stage"):
        facts.append(("Stage", payload["stage"]))
    if payload.get("cluster"):
        facts.append(("Cluster", payload["cluster"]))
    if run.get("state"):
        facts.append(("State", run["state"]))
    if payload.get("reason"):
        facts.append(("Reason", payload["reason"]))
    if payload.get("approvers"):
        facts.append(("May approve", payload["approvers"]["text"]))
    if payload.get("freeze"):
        facts.append(("Freeze", payload["freeze"]["name"]))
    return facts


def _links(delivery) -> list[tuple[str, str]]:
    links = delivery.payload.get("links") or {}
    order = ["approve", "cluster", "run", "placement", "overview"]
    return [(_LINK_TITLES[k], links[k]) for k in order if links.get(k)]


def slack_body(delivery) -> dict:
    """A Slack incoming-webhook message: the summary, the facts, and a
    button per deep link (Block Kit; `text` is the notification's fallback)."""
    summary = delivery.payload.get("summary", "")
    fields = [{"type": "mrkdwn", "text": f"*{label}*\n{_slack_escape(value)}"} for label, value in _facts(delivery)]
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": _slack_escape(summary)}},
              {"type": "section", "fields": fields[:10]}]
    buttons = [{"type": "button", "text": {"type": "plain_text", "text": title}, "url": url}
               for title, url in _links(delivery)]
    if buttons:
        blocks.append({"type": "actions", "elements": buttons})
    return {"text": summary, "blocks": blocks}


def _slack_escape(text: str) -> str:
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def teams_body(delivery) -> dict:
    """A Microsoft Teams incoming-webhook (Workflows) message: an Adaptive
    Card with the summary, a fact set and an Action.OpenUrl per deep link."""
    card = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json", "type": "AdaptiveCard", "version": "1.4",
        "body": [{"type": "TextBlock", "text": delivery.payload.get("summary", ""), "wrap": True, "weight": "Bolder"},
                 {"type": "FactSet", "facts": [{"title": label, "value": value} for label, value in _facts(delivery)]}],
        "actions": [{"type": "Action.OpenUrl", "title": title, "url": url} for title, url in _links(delivery)],
    }
    return {"type": "message", "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive",
                                                "content": card}]}


def email_message(delivery) -> tuple[str, str]:
    """(subject, plain-text body)."""
    summary = delivery.payload.get("summary", "")
    lines = [summary, ""] + [f"{label}: {value}" for label, value in _facts(delivery)] + [""]
    lines += [f"{title}: {url}" for title, url in _links(delivery)]
    lines += ["", f"Notification key: {delivery.key}",
              f"You receive this through the subscription {delivery.subscription.name} in Fleet UI."]
    return f"[Fleet UI] {summary}"[:200], "\n".join(lines)

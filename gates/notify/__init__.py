"""Notifications: what a gate decision, a failed action, a canary, a deployment or an SLO has to tell
someone, routed by event, service, team and severity to the configured channels (Slack, PagerDuty
Events v2, SNS, a webhook, an NDJSON file), delivered with retries and deduplicated.

Every outcome is stored (`collector.notifications`: sent, failed or suppressed); a failure is logged
at ERROR. Secrets (`${VAR}` in URLs, routing keys and header values) are read when sending and never
logged or stored: the stored body shows the placeholder (or ***) instead."""

from .delivery import Notifier
from .events import (
    action_failed_notifications,
    burn_rate_notifications,
    canary_notification,
    decision_link,
    decision_notifications,
    deployment_notification,
)
from .messages import Notification, message, pagerduty_event, slack_message, sns_message, webhook_body

__all__ = [
    "Notification",
    "Notifier",
    "action_failed_notifications",
    "burn_rate_notifications",
    "canary_notification",
    "decision_link",
    "decision_notifications",
    "deployment_notification",
    "message",
    "pagerduty_event",
    "slack_message",
    "sns_message",
    "webhook_body",
]

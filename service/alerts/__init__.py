"""Alerts leaving Carepath: the webhook an operator configures (`ALERT_WEBHOOK_URL`)."""

"""Intake of EHR Subscription notifications: envelopes, authentication, event numbers, recovery.

Plain modules, no Flask: `service/api/notifications.py` is the HTTP edge and
`service/cli/subscriptions.py` registers subscriptions on the EHR.
"""

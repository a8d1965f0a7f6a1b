"""The outbound half: the audit trail, the change feed, and webhook delivery.

Domain writes emit events (domain/events.py); recorder.py turns them into audit entries and
outbox rows in the same transaction; feed.py reads the outbox for clients, worker.py
delivers it to webhooks.
"""

"""Signed webhooks (Standard Webhooks 1.0) for every event of the suite.

Consumers (``consumers.py``) turn each event of the services' streams into delivery rows, one per
subscribed endpoint of the event's tenant, in the transaction that records the event in the
inbox, before it is acknowledged. A worker (``delivery.py``) claims due deliveries with a lease,
signs and sends them, and records the outcome on the retry schedule. Endpoints are managed at
``/v1/webhooks/...`` (``api/webhooks.py``). See gateway/README.md, "Webhooks".
"""

"""Notifications: targets staff configure in the admin (an apprise URL, stored encrypted, and the events
it wants), and `services.notify`, the one entry point every operation calls. Delivery is a row first
(NotificationDelivery), then a Celery task with bounded retries; it never blocks or fails the operation
that triggered it."""

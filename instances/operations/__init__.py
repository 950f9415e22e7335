"""The operation layer: what every long operation on an instance (upgrade, backup, restore) shares.

- `models.InstanceLock` and `choices.OperationKind`: at most one operation per instance, held in the database;
- `locks`: take, claim, heartbeat and release that lock;
- `run.operation_claim` and `run.run_operation`: pending → running on the row, then the work under the
  claimed lock with its heartbeat, the lock released whatever happens (upgrades, backups, restores);
- `reconcile`: find locks whose worker died and hand each to the handler its operation kind registered;
- `enqueue.enqueue_on_commit`: send an operation's Celery task once the row that describes it is committed.

This package sits in `instances` so that both `instances.backups` and `upgrades` build on it without
either importing the other. Nothing here knows a particular operation kind.
"""

"""The operation layer: what every long operation on an instance (upgrade, backup, restore) shares.

- `models.InstanceLock` and `choices.OperationKind`: at most one operation per instance, held in the database;
- `locks`: take, claim, heartbeat and release that lock; a claim is a `Fence` (the lock's generation) that
  every write of the running operation is conditional on;
- `db.db_retry`: a running operation's writes ride out a short database outage;
- `node_lock`: the second fence, a lock directory on the node held while an operation changes a tenant;
- `run.operation_claim` and `run.run_operation`: pending → running on the row, then the work under the
  claimed lock with its heartbeat, the lock released whatever happens (upgrades, backups, restores);
- `reconcile`: find locks whose worker died and hand each to the handler its operation kind registered;
- `enqueue.enqueue_on_commit`: send an operation's Celery task once the row that describes it is committed,
  or refuse the request (503) and leave nothing behind when the broker is down.

This package sits in `instances` so that both `instances.backups` and `upgrades` build on it without
either importing the other. Nothing here knows what a particular operation kind does (node_lock only
knows which kinds change a tenant).
"""

"""Rollouts: one upgrade target taken to many instances, canary first, then in waves, at most N upgrades at
a time per node, halting itself when failures pass the budget.

A rollout is one more kind of operation on the operation layer (instances.operations): it holds no
instance lock itself; every instance it touches is upgraded by the single-instance upgrade services
(`upgrade_request`), so locks, previews and approvals behave exactly as for one upgrade. The driver
(`driver.rollout_drive`) advances the rollout one step at a time under a row lock on the rollout; its
state lives in the database, so a new worker (kicked by the reconciler's sweep) carries on where a
killed one stopped.

- `choices`, `models`: Rollout and its per-instance RolloutItem rows;
- `waves`: pure planning (canary, wave sizes like "1,10%,50%,rest", the order across nodes);
- `services`: create, halt, resume, cancel (admin, API and command call these);
- `driver`: one step of the rollout; `tasks`: the Celery task that runs it; `reconcile`: the sweep.
"""

"""Use cases: plain functions over store, engine and EHR, called alike by the API, the command line and tasks.

No Flask and no Celery in here. Each is safe to run twice and returns the follow-up work (orders,
`service.queue`); the caller queues it after the commit. `intake` stores inbound events;
`evaluation` feeds facts, checkpoints and Task outcomes to the pathway and `persist` records what
it decided; `delivery` is the one road to the EHR (with `ehr_writes`, how each write is made);
`reconcile` brings Task changes back from the EHR; `sweep` finds work whose queue message was lost;
`worklist`, `definitions`, `backfill`, `dry_run` and `notifications` are the coordinators',
administrators', bulk-load, simulation and Subscription use cases.
"""

"""Handlers: plain functions that orchestrate store, engine and EHR. No Celery in here.

Each handler is safe to run twice and returns the follow-up work; the calling task queues it
after the commit. `evaluation` feeds facts, checkpoints and Task outcomes to the pathway;
`outbound` writes decisions to the EHR; `sweep` finds work whose queue message was lost.
"""

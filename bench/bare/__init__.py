"""The bare pipeline: the same gunicorn server and Celery queue as Carepath, with nothing in between."""

"""Serving HTTP: gunicorn with a worker that reads whole requests, HTTP framing, and security headers."""

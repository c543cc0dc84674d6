"""A minimal Flask app: read the JSON body, queue a no-op task, answer 201 with the body."""

from __future__ import annotations

import itertools
import json

from flask import Flask, Response, request

from bench.bare.tasks import NOOP, make_celery


def create_app(broker_url: str) -> Flask:
    app = Flask("bare")
    celery = make_celery(broker_url)
    numbers = itertools.count()

    @app.post("/fhir/<resource_type>")
    def post_resource(resource_type: str) -> Response:
        body = request.get_data(cache=False)
        json.loads(body)  # as Carepath does, refuse what is not JSON
        celery.send_task(NOOP, args=[next(numbers)])
        return Response(body, status=201, mimetype="application/fhir+json")

    @app.get("/healthz")
    def healthz() -> Response:
        return Response("ok")

    return app

"""`python -m bench.bare serve|worker`: run the bare pipeline's API or worker."""

from __future__ import annotations

import argparse
from typing import Any

from gunicorn.app.base import BaseApplication

from bench.bare.app import create_app
from bench.bare.tasks import QUEUE, make_celery
from service.settings import Settings
from service.web.wsgi import WORKER_CLASS


class _Gunicorn(BaseApplication):  # type: ignore[misc]
    """gunicorn configured as `service.web.wsgi` configures Carepath's API."""

    def __init__(self, broker_url: str, bind: str, workers: int, threads: int) -> None:
        self._broker_url, self._bind, self._workers, self._threads = broker_url, bind, workers, threads
        self.settings = Settings.from_env({})  # the worker class reads its body limit here
        super().__init__()

    def load_config(self) -> None:
        self.cfg.set("bind", self._bind)
        self.cfg.set("workers", self._workers)
        self.cfg.set("worker_class", WORKER_CLASS)
        self.cfg.set("threads", self._threads)
        self.cfg.set("accesslog", None)
        self.cfg.set("graceful_timeout", 10)

    def load(self) -> Any:
        return create_app(self._broker_url)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("command", choices=("serve", "worker"))
    parser.add_argument("--broker", required=True)
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    if args.command == "serve":
        _Gunicorn(args.broker, f"127.0.0.1:{args.port}", args.workers, args.threads).run()
    else:
        make_celery(args.broker).worker_main(
            ["worker", f"--queues={QUEUE}", f"--concurrency={args.workers}", "--without-gossip", "--without-mingle"]
        )


if __name__ == "__main__":
    main()

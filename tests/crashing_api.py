"""`carepath serve` whose /readyz raises: how an unhandled error in a request is logged.

Run as `python -m tests.crashing_api serve --port <port>`; it starts exactly as `carepath serve` does (the
same logging set-up and gunicorn application) and only swaps one view for one that fails.
"""

from __future__ import annotations

import sys
from typing import Any

from service.logs import configure_logging
from service.settings import Settings
from service.web.wsgi import GunicornApplication

CRASH = "readiness probe exploded on purpose"


class CrashingApplication(GunicornApplication):
    def load(self) -> Any:
        app = super().load()

        def crash() -> None:
            raise RuntimeError(CRASH)

        app.view_functions["health.readyz"] = crash
        return app


if __name__ == "__main__":
    settings = Settings.from_env()
    configure_logging(settings)
    CrashingApplication(settings, bind=f"127.0.0.1:{sys.argv[-1]}").run()

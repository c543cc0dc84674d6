"""HTTP entrypoints (Flask blueprints). Thin: validate, store, queue after commit, answer."""

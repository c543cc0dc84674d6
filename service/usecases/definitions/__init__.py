"""Pathway definitions as published versions: the registry workers load from, and moving patients between versions."""

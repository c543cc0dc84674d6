"""`carepath keys`: make the key pair Carepath signs its SMART Backend Services assertions with."""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

from service.ehr.keys import ALGORITHMS, RS384, generate_key, private_key_pem, signing_key

KEY_DIR_MODE = 0o700  # only Carepath's user may list or read its keys
KEY_FILE_MODE = 0o600  # the private key: readable by Carepath's user alone


@click.group()
def keys() -> None:
    """Keys for authenticating to the EHR with SMART Backend Services."""


@keys.command()
@click.option("--alg", type=click.Choice(ALGORITHMS), default=RS384, show_default=True, help="Signing algorithm.")
@click.option(
    "--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True, help="Folder for the key."
)
def generate(alg: str, out_dir: Path) -> None:
    """Write a new private key PEM into --out and print its public JWKS (to register with the EHR)."""
    key = signing_key(generate_key(alg))
    path = out_dir / f"ehr-{alg.lower()}-{key.kid}.pem"
    out_dir.mkdir(parents=True, exist_ok=True, mode=KEY_DIR_MODE)
    try:
        # O_EXCL: never overwrite a key; mode at creation: the key is never readable by others.
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, KEY_FILE_MODE)
    except OSError as error:
        raise click.ClickException(f"cannot create {path}: {error.strerror}") from None
    with os.fdopen(descriptor, "wb") as file:
        file.write(private_key_pem(key.private_key))
    click.echo(json.dumps(key.jwks(), indent=2))
    click.echo(f"private key: {path}", err=True)
    click.echo(f"set EHR_PRIVATE_KEY_FILE to it; EHR_KEY_ID may stay empty (its kid is {key.kid})", err=True)

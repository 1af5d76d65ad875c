"""``celeriac keys``: CURVE key pairs for the hub, its clients and its workers."""

from __future__ import annotations

from pathlib import Path

import click

from celeriac.transport.curve import generate_keys

__all__ = ["keys"]


@click.group()
def keys() -> None:
    """CURVE keys: encryption and authentication between peers and the hub.

    \b
    1. celeriac keys generate hub     (on the hub: hub.key, hub.key_secret)
    2. celeriac keys generate worker1 (per client or worker; copy worker1.key into the
       hub's allowed directory)
    3. hub:    hub_curve_secret_key_file=hub.key_secret, hub_curve_allowed_keys_dir=DIR
       peers:  broker_curve_server_key_file=hub.key,
               broker_curve_secret_key_file=worker1.key_secret
    """


@keys.command()
@click.argument("name")
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="Where to write NAME.key (public) and NAME.key_secret (private, mode 600).",
)
def generate(name: str, directory: Path) -> None:
    """Make a key pair NAME.key / NAME.key_secret."""
    if "/" in name or not name.strip():
        raise click.BadParameter("a plain file name, without '/'", param_hint="NAME")
    for suffix in (".key", ".key_secret"):
        if (directory / f"{name}{suffix}").exists():
            raise click.ClickException(f"{directory / (name + suffix)} exists: not overwritten")
    public, secret = generate_keys(directory, name)
    click.echo(f"public key: {public.resolve()}  (give it to the hub's allowed directory)")
    click.echo(f"secret key: {secret.resolve()}  (keep it on this machine only)")

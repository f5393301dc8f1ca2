"""``geocube serve`` (the HTTP API with uvicorn) and ``geocube token create|list|revoke`` (its tokens)."""

from __future__ import annotations

import os
import socket
from typing import Annotated

import typer

from ..entities import SCOPES
from ..errors import InvalidArgument
from .common import Json, state
from .output import Output, fmt_time, table

Db = Annotated[str | None, typer.Option("--db", metavar="URL", help=(
    "Catalogue URL (default: the global --db, $GEOCUBE_DB or ./geocube.db)."))]


def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[
        int, typer.Option(min=0, max=65535, help="Port to listen on (0: a free one, named in the log).")
    ] = 8000,
    db: Db = None,
    workers: Annotated[int, typer.Option(min=1, help="Server processes (each with its own catalogue connection).")]
    = 1,
) -> None:
    """Serve the catalogue over HTTP (API docs at /docs); requests need a token (`geocube token create`).

    Cube and timeseries requests answer with plans: clients read the pixels themselves."""
    import uvicorn

    from ..api.app import DB_ENV, create_app
    from ..geocube import default_url

    url = db or state(ctx).db or default_url()
    if "://" not in url:
        url = f"sqlite:///{os.path.abspath(url)}"
    check_address(host, port)
    if workers == 1:
        app = create_app(db=url)
        uvicorn.run(app, host=host, port=port, log_level="info")
        return
    # several processes: uvicorn imports the app itself, so the catalogue goes through the environment
    from ..geocube import connect

    connect(url).close()  # migrate once here, not in every worker at the same time
    os.environ[DB_ENV] = url
    uvicorn.run("geocube_dask.api.app:create_app_from_env", factory=True, host=host, port=port, workers=workers,
                log_level="info")


def check_address(host: str, port: int) -> None:
    """Refuse an address nothing can listen on (taken, or not this machine's) with a clear error, before
    the catalogue is opened: uvicorn would only log it and exit with code 3."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                              flags=socket.AI_PASSIVE)[0]
        with socket.socket(family, kind, proto) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
            sock.bind(address)
    except OSError as exc:
        raise InvalidArgument(f"cannot listen on {host}:{port} ({exc.strerror or exc}): choose another --port, "
                              "or a --host of this machine") from None


token_app = typer.Typer(no_args_is_help=True, help="Tokens of the HTTP API (`geocube serve`).")


def _gc(ctx: typer.Context, db: str | None):  # noqa: ANN202
    st = state(ctx)
    if db is not None:
        st.close()
        st.db = db
    return st.gc


@token_app.command("create")
def token_create(
    ctx: typer.Context,
    scope: Annotated[str, typer.Option(help=f"One of {', '.join(SCOPES)} (each allows what the ones before do).")],
    name: Annotated[str, typer.Option(help="A note saying whose token it is.")] = "",
    db: Db = None,
) -> None:
    """Create a token and print it alone on the last line (only its hash is stored: keep it)."""
    token, secret = _gc(ctx, db).create_token(scope, name)
    typer.echo(f"created {token.scope} token {token.id}" + (f" ({token.name})" if token.name else ""), err=True)
    typer.echo(secret)


@token_app.command("list")
def token_list(
    ctx: typer.Context,
    revoked: Annotated[bool, typer.Option("--revoked", help="Also list revoked tokens.")] = False,
    db: Db = None,
    as_json: Json = False,
) -> None:
    """The tokens (ids, names, scopes; never the secrets)."""
    tokens = _gc(ctx, db).list_tokens(include_revoked=revoked)
    out = Output(as_json)
    out.emit([{"id": t.id, "name": t.name, "scope": t.scope, "created": t.created, "revoked": t.revoked}
              for t in tokens])
    out.show(table("tokens", ["id", "name", "scope", "created", "revoked"], [
        [t.id, t.name, t.scope, fmt_time(t.created), fmt_time(t.revoked) if t.revoked else ""] for t in tokens]))


@token_app.command("revoke")
def token_revoke(
    ctx: typer.Context,
    token_id: Annotated[str, typer.Argument(metavar="ID", help="The token's id (geocube token list).")],
    db: Db = None,
) -> None:
    """Revoke a token: it stops working at once."""
    token = _gc(ctx, db).revoke_token(token_id)
    typer.echo(f"revoked {token.scope} token {token.id}")

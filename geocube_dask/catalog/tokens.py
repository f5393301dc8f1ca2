"""Bearer tokens of the HTTP API (``geocube serve``): created, listed, revoked, checked.

A token is ``gct_`` followed by 43 random URL-safe characters (256 bits from :mod:`secrets`). Only the
sha256 of the whole token is stored: a leaked catalogue gives no usable token. Checking a token looks
its hash up (an index) and compares the stored hash with :func:`hmac.compare_digest`.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from ..entities import SCOPES, ApiToken
from ..errors import InvalidArgument, NotFound
from .db.engine import Connected
from .db.schema import api_tokens

PREFIX = "gct_"


def token_hash(secret: str) -> str:
    """The stored form of a token: the hex sha256 of its text."""
    return hashlib.sha256(secret.encode()).hexdigest()


def _scope(value: Any) -> str:
    if value not in SCOPES:
        raise InvalidArgument(f"unknown token scope {value!r}: choose one of {', '.join(SCOPES)}")
    return str(value)


def _from_row(row: Any) -> ApiToken:
    return ApiToken(str(row.id), row.name, row.scope, row.created, row.revoked)


class TokenMixin(Connected):
    """API tokens: create (the secret is returned once), list, revoke, and the scope of a secret."""

    def create_token(self, scope: str, name: str = "") -> tuple[ApiToken, str]:
        """A new token of ``scope`` (``read``, ``write`` or ``admin``): ``(its description, its secret)``.

        The secret is shown only here: keep it, the catalogue stores only its hash."""
        scope = _scope(scope)
        if not isinstance(name, str):
            raise InvalidArgument(f"a token name is a string, not {name!r}")
        secret = PREFIX + secrets.token_urlsafe(32)
        token = ApiToken(str(uuid.uuid4()), name, scope, datetime.now(UTC), None)
        with self._tx() as conn:
            conn.execute(api_tokens.insert().values(
                id=token.id, name=name, scope=scope, secret_hash=token_hash(secret), created=token.created,
                revoked=None,
            ))
        return token, secret

    def list_tokens(self, include_revoked: bool = False) -> list[ApiToken]:
        """The tokens (never their secrets), oldest first; revoked ones too with ``include_revoked``."""
        stmt = sa.select(api_tokens).order_by(api_tokens.c.created, api_tokens.c.id)
        if not include_revoked:
            stmt = stmt.where(api_tokens.c.revoked.is_(None))
        with self._tx(write=False) as conn:
            return [_from_row(r) for r in conn.execute(stmt)]

    def revoke_token(self, token_id: str) -> ApiToken:
        """Revoke the token with this id: it stops working at once. Raises NotFound."""
        try:
            token_id = str(uuid.UUID(str(token_id)))
        except ValueError:
            raise NotFound(f"no token with id {token_id!r}: ids are UUIDs, see list_tokens()") from None
        with self._tx() as conn:
            row = conn.execute(sa.select(api_tokens).where(api_tokens.c.id == token_id)).first()
            if row is None:
                raise NotFound(f"no token with id {token_id!r}: see list_tokens()")
            if row.revoked is None:
                conn.execute(api_tokens.update().where(api_tokens.c.id == token_id).values(revoked=datetime.now(UTC)))
            row = conn.execute(sa.select(api_tokens).where(api_tokens.c.id == token_id)).one()
        return _from_row(row)

    def token_scope(self, secret: str) -> str | None:
        """The scope of a valid (known, not revoked) token, else None."""
        if not isinstance(secret, str) or not secret.startswith(PREFIX):
            return None
        digest = token_hash(secret)
        with self._tx(write=False) as conn:
            row = conn.execute(
                sa.select(api_tokens.c.secret_hash, api_tokens.c.scope, api_tokens.c.revoked)
                .where(api_tokens.c.secret_hash == digest)
            ).first()
        if row is None or row.revoked is not None or not hmac.compare_digest(row.secret_hash, digest):
            return None
        return str(row.scope)

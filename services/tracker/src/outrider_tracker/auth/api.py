"""Authentication and roles for every /v1 route, and the admin endpoints that manage API tokens."""

import hmac
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from outrider_tracker.auth import service
from outrider_tracker.auth.models import ApiTokenCreate, ApiTokenCreated, ApiTokenRead, Principal, Role

bearer = HTTPBearer(
    auto_error=False,
    description="An API token from `POST /v1/api-tokens` (or the bootstrap `OUTRIDER_ADMIN_TOKEN`). "
    "Viewers may GET; editors may also change engagements; admins may also manage API tokens.",
)
READS = frozenset({"GET", "HEAD", "OPTIONS"})
REFUSALS: dict[int | str, dict[str, object]] = {
    401: {"description": "No API token, or an unknown or revoked one"},
    403: {"description": "The token's role may not do this"},
}


async def authenticate(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> Principal:
    """The caller behind the bearer token; 401 without a live one."""
    if credentials is None:
        raise HTTPException(401, "an API token is required (Authorization: Bearer …)", {"WWW-Authenticate": "Bearer"})
    admin = request.app.state.settings.admin_token
    if admin is not None and hmac.compare_digest(credentials.credentials.encode(), admin.get_secret_value().encode()):
        return Principal("admin", Role.admin)
    principal = await service.principal_of(request.app.state.db.pool, credentials.credentials)
    if principal is None:
        raise HTTPException(401, "unknown or revoked API token", {"WWW-Authenticate": "Bearer"})
    return principal


def _require(principal: Principal, needed: Role, what: str) -> Principal:
    if principal.role.rank < needed.rank:
        raise HTTPException(403, f"{principal.name} has role {principal.role}; {what} needs {needed}")
    return principal


async def authorize(request: Request, principal: Annotated[Principal, Depends(authenticate)]) -> Principal:
    """Reads need a viewer, every change an editor."""
    needed = Role.viewer if request.method in READS else Role.editor
    return _require(principal, needed, request.method)


async def admin_only(principal: Annotated[Principal, Depends(authenticate)]) -> Principal:
    """Managing API tokens needs an admin."""
    return _require(principal, Role.admin, "managing API tokens")


Admin = Annotated[Principal, Depends(admin_only)]
router = APIRouter(
    prefix="/v1/api-tokens",
    tags=["api tokens"],
    responses=REFUSALS,
)


@router.post("", status_code=201, summary="Mint an API token with a role (shown once)")
async def create_api_token(token_in: ApiTokenCreate, admin: Admin, request: Request) -> ApiTokenCreated:
    return await service.create(request.app.state.db.pool, token_in=token_in, by=admin.name)


@router.get("", summary="API tokens (metadata only)")
async def list_api_tokens(admin: Admin, request: Request) -> list[ApiTokenRead]:
    return await service.get_all(request.app.state.db.pool)


@router.delete("/{token_id}", status_code=204, summary="Revoke an API token",
               responses={404: {"description": "No such token"}})  # fmt: skip
async def revoke_api_token(token_id: str, admin: Admin, request: Request) -> None:
    if not await service.revoke(request.app.state.db.pool, token_id=token_id, by=admin.name):
        raise HTTPException(404, f"API token {token_id} not found")

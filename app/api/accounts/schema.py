"""Accounts API: viewer, users, sign-up/login/logout, profile, API keys."""

from __future__ import annotations

from typing import Annotated

import strawberry

from app.accounts import services
from app.accounts.models import User
from app.api import ratelimit
from app.api.accounts.types import ApiKeyType, UserType
from app.api.context import SESSION_COOKIE, Info
from app.api.errors import InvalidCredentialsError, NotFound, ValidationFailed, typed_errors
from app.api.ids import decode_id
from app.core.settings import get_settings
from app.funding import wallets


def _client_ip(info: Info) -> str:
    request = info.context.request
    return request.client.host if request is not None and request.client else "unknown"


def _set_session_cookie(info: Info, token: str) -> None:
    settings = get_settings()
    response = info.context.response
    if response is not None:
        response.set_cookie(
            SESSION_COOKIE, token, max_age=settings.session_days * 86400, httponly=True,
            samesite="lax", secure=settings.secure_cookies, path="/",
        )


@strawberry.type
class AccountsQuery:
    @strawberry.field(description="The authenticated caller, or null when anonymous.")
    def viewer(self, info: Info) -> UserType | None:
        if info.context.auth_error is not None:
            raise info.context.auth_error
        user = info.context.user
        return UserType.from_model(user) if user else None

    @strawberry.field
    async def user(self, info: Info, id: strawberry.ID) -> UserType | None:
        row = await info.context.loaders.node(User, id, "User")
        return UserType.from_model(row)


@strawberry.input
class SignUpInput:
    handle: str
    email: str
    password: str
    display_name: str | None = None


@strawberry.input
class LoginInput:
    email: str
    password: str


@strawberry.type
class ViewerSession:
    viewer: UserType


@strawberry.type
class LogoutResult:
    ok: bool


@strawberry.input
class UpdateViewerInput:
    display_name: str | None = None
    bio: str | None = None


@strawberry.type
class UpdateViewerSuccess:
    viewer: UserType


@strawberry.input
class CreateApiKeyInput:
    name: str


@strawberry.type
class CreateApiKeySuccess:
    api_key: ApiKeyType
    secret: str = strawberry.field(description="The full key. Shown once; only its hash is stored.")


@strawberry.input
class RevokeApiKeyInput:
    id: strawberry.ID


@strawberry.type
class RevokeApiKeySuccess:
    api_key: ApiKeyType


SignUpPayload = Annotated[ViewerSession | ValidationFailed, strawberry.union("SignUpPayload")]
LoginPayload = Annotated[ViewerSession | InvalidCredentialsError, strawberry.union("LoginPayload")]
UpdateViewerPayload = Annotated[UpdateViewerSuccess | ValidationFailed, strawberry.union("UpdateViewerPayload")]
CreateApiKeyPayload = Annotated[CreateApiKeySuccess | ValidationFailed, strawberry.union("CreateApiKeyPayload")]


@strawberry.type
class AccountsMutation:
    @strawberry.mutation(description="Create an account with a password and start a browser session.")
    @typed_errors
    async def sign_up(self, info: Info, input: SignUpInput) -> SignUpPayload:
        await ratelimit.hit(info.context.require_services(), "signup", _client_ip(info),
                            get_settings().auth_attempts_per_hour, 3600)
        await wallets.create_user_with_wallet(
            handle=input.handle, email=input.email, password=input.password, display_name=input.display_name
        )
        user, token = await services.login(input.email, input.password)
        _set_session_cookie(info, token)
        return ViewerSession(viewer=UserType.from_model(user))

    @strawberry.mutation(description="Email + password login; sets an HTTP-only session cookie.")
    @typed_errors
    async def login(self, info: Info, input: LoginInput) -> LoginPayload:
        await ratelimit.hit(info.context.require_services(), "login", _client_ip(info),
                            get_settings().auth_attempts_per_hour, 3600)
        user, token = await services.login(input.email, input.password)
        _set_session_cookie(info, token)
        return ViewerSession(viewer=UserType.from_model(user))

    @strawberry.mutation
    async def logout(self, info: Info) -> LogoutResult:
        request = info.context.request
        token = request.cookies.get(SESSION_COOKIE) if request is not None else None
        if token:
            await services.logout(token)
        if info.context.response is not None:
            info.context.response.delete_cookie(SESSION_COOKIE, path="/")
        return LogoutResult(ok=bool(token))

    @strawberry.mutation
    @typed_errors
    async def update_viewer(self, info: Info, input: UpdateViewerInput) -> UpdateViewerPayload:
        user = info.context.require_user()
        user = await services.update_profile(user, display_name=input.display_name, bio=input.bio)
        return UpdateViewerSuccess(viewer=UserType.from_model(user))

    @strawberry.mutation(description="Human only: API keys are created in the web UI, never by an API key.")
    @typed_errors
    async def create_api_key(self, info: Info, input: CreateApiKeyInput) -> CreateApiKeyPayload:
        user = info.context.require_human()
        created = await services.create_api_key(user, input.name)
        return CreateApiKeySuccess(api_key=ApiKeyType.from_model(created.key), secret=created.secret)

    @strawberry.mutation(description="Revoke one of your API keys (idempotent).")
    async def revoke_api_key(self, info: Info, input: RevokeApiKeyInput) -> RevokeApiKeySuccess:
        user = info.context.require_user()
        key = await services.revoke_api_key(user, str(decode_id(input.id, "ApiKey")))
        if key is None:
            raise NotFound("API key")
        return RevokeApiKeySuccess(api_key=ApiKeyType.from_model(key))

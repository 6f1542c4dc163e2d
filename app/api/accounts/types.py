from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import strawberry
from strawberry import relay

from app.accounts.models import ApiKey, User
from app.api.accounts.loaders import api_keys
from app.api.context import Info
from app.api.errors import Forbidden
from app.api.funding.loaders import balance, ledger_page, user_fundings
from app.api.nodes import Column, ModelNode, RowFields
from app.api.pagination import Connection
from app.funding import ledger

if TYPE_CHECKING:
    from app.api.funding.types import BalanceType, FundingType, LedgerEntryType


def _require_self(info: Info, user_id: object) -> None:
    viewer = info.context.user
    if viewer is None or (str(viewer.id) != str(user_id) and not viewer.is_admin):
        raise Forbidden("Only the user themself can see this.")


@strawberry.type(name="ApiKey")
class ApiKeyType(ModelNode):
    model = ApiKey
    id: relay.NodeID[str]
    name: str
    prefix: str = strawberry.field(description="The first characters of the key, to recognise it.")
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None
    user_id: strawberry.Private[str]

    @classmethod
    def from_model(cls, row: ApiKey) -> ApiKeyType:
        return cls(
            id=str(row.id), name=row.name, prefix=row.prefix, created_at=row.created_at,
            last_used_at=row.last_used_at, revoked_at=row.revoked_at, user_id=str(row.user_id),
        )

    @classmethod
    def visible(cls, info: Info, row: ApiKey) -> bool:
        viewer = info.context.user
        return viewer is not None and (str(viewer.id) == str(row.user_id) or viewer.is_admin)


USER_FIELDS: dict[str, Callable[[User], Any]] = {
    "id": Column("id", str),
    **{name: Column(name) for name in ("handle", "display_name", "bio", "is_admin", "created_at")},
    "_email": Column("email"),
}


@strawberry.type(name="User")
class UserType(RowFields, ModelNode):
    model = User
    row_fields = USER_FIELDS
    id: relay.NodeID[str]
    handle: str
    display_name: str
    bio: str
    is_admin: bool
    created_at: datetime
    _email: strawberry.Private[str]

    @strawberry.field(description="Private: only the user themself (or an admin).")
    def email(self, info: Info) -> str:
        _require_self(info, self.id)
        return self._email

    @strawberry.field(description="Private: the user's API keys, newest first.")
    async def api_keys(self, info: Info) -> list[ApiKeyType]:
        _require_self(info, self.id)
        return [ApiKeyType.from_model(r) for r in await api_keys(info, self.id)]

    @strawberry.field(description="Private: wallet balance.")
    async def balance(self, info: Info) -> Annotated[BalanceType, strawberry.lazy("app.api.funding.types")]:
        _require_self(info, self.id)
        return await balance(info, self.id)

    @strawberry.field(description="Private: the runs this user funded, newest first.")
    async def fundings(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> Connection[Annotated[FundingType, strawberry.lazy("app.api.funding.types")]]:
        _require_self(info, self.id)
        return await user_fundings(info, self.id, first, after)

    @strawberry.field(description="Public: the runs this user funded, newest first, for their profile page. Each "
                                  "funding is already public in its run's `fundings`; wallet movements stay private.")
    async def public_fundings(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> Connection[Annotated[FundingType, strawberry.lazy("app.api.funding.types")]]:
        from app.api.funding.loaders import user_fundings

        return await user_fundings(info, self.id, first, after)

    @strawberry.field(description="Private: wallet movements (cash and credit buckets), newest first.")
    async def transactions(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> Connection[Annotated[LedgerEntryType, strawberry.lazy("app.api.funding.types")]]:
        _require_self(info, self.id)
        return await ledger_page(info, ledger.user_accounts(self.id), first, after)

"""The root schema: composes every domain's Query, Mutation and Subscription."""

from __future__ import annotations

import strawberry
from strawberry import relay
from strawberry.tools import merge_types

from app.accounts.schema import AccountsMutation, AccountsQuery
from app.api.extensions import schema_extensions
from app.catalog.schema import CatalogQuery
from app.projects.schema import ProjectsMutation, ProjectsQuery


@strawberry.type
class NodeQuery:
    node: relay.Node | None = relay.node(description="Any object by its global id.")


Query = merge_types("Query", (NodeQuery, AccountsQuery, ProjectsQuery, CatalogQuery))
Mutation = merge_types("Mutation", (AccountsMutation, ProjectsMutation))

schema = strawberry.Schema(query=Query, mutation=Mutation, extensions=schema_extensions())

"""The root schema: composes every domain's Query, Mutation and Subscription."""

from __future__ import annotations

import strawberry
from strawberry import relay
from strawberry.tools import merge_types

from app.api import input_policy
from app.api.accounts.schema import AccountsMutation, AccountsQuery
from app.api.catalog.schema import CatalogQuery
from app.api.discussions.schema import DiscussionsMutation, DiscussionsQuery
from app.api.extensions import PlatformSchema, schema_extensions
from app.api.feedback.schema import FeedbackMutation, FeedbackQuery
from app.api.funding.schema import FundingMutation
from app.api.jobs.schema import JobsQuery, OrphansMutation
from app.api.jobs.subscriptions import JobsBoardSubscription, JobStreamsSubscription
from app.api.notifications.schema import NotificationsMutation, NotificationsQuery
from app.api.notifications.subscriptions import NotificationsSubscription
from app.api.plans import PlannedExecutionContext
from app.api.projects.schema import ProjectsMutation, ProjectsQuery
from app.api.runs.schema import (
    CompareRunsQuery,
    CopyRunMutation,
    FundRunMutation,
    MLprojectQuery,
    RunDiscoveryQuery,
    RunsMutation,
    RunsQuery,
)
from app.api.runs.subscriptions import RunsSubscription


@strawberry.type
class NodeQuery:
    node: relay.Node | None = relay.node(description="Any object by its global id.")


Query = merge_types("Query", (
    NodeQuery, AccountsQuery, ProjectsQuery, RunsQuery, RunDiscoveryQuery, JobsQuery, CompareRunsQuery, MLprojectQuery,
    CatalogQuery, DiscussionsQuery, NotificationsQuery, FeedbackQuery,
))
Mutation = merge_types("Mutation", (
    AccountsMutation, ProjectsMutation, RunsMutation, CopyRunMutation, FundRunMutation, FundingMutation,
    DiscussionsMutation, NotificationsMutation, FeedbackMutation, OrphansMutation,
))

Subscription = merge_types("Subscription", (
    JobStreamsSubscription, RunsSubscription, JobsBoardSubscription, NotificationsSubscription,
))

schema = PlatformSchema(query=Query, mutation=Mutation, subscription=Subscription,
                        extensions=schema_extensions(), execution_context_class=PlannedExecutionContext)
input_policy.install(schema)

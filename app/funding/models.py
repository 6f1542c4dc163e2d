"""Money at rest. Integer cents everywhere; every movement is a balanced ledger transaction.

Enumerated columns are plain strings holding the `StrEnum` values below (like the rest of the
schema), so migrations do not import application code.
"""

from __future__ import annotations

import enum
import uuid
from typing import TYPE_CHECKING, Any

from tortoise import fields
from tortoise.models import Model

from app.core.models import Entity

if TYPE_CHECKING:
    from app.accounts.models import User
    from app.projects.models import Project


class SurplusPolicy(enum.StrEnum):
    """Where a funding's unspent share goes when its run settles."""

    TO_PROJECT = "to_project"
    REFUND = "refund"


class LedgerKind(enum.StrEnum):
    DEPOSIT = "deposit"
    CREDIT_GRANT = "credit_grant"
    FUNDING = "funding"
    SETTLEMENT = "settlement"
    REFUND = "refund"


class SettlementKind(enum.StrEnum):
    SETTLED = "settled"  # the funded job ended: actual cost charged, the rest returned
    REFUNDED = "refunded"  # cancelled before the funded job started: everything returned


class DepositStatus(enum.StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class Wallet(Model):
    user: fields.OneToOneRelation[User] = fields.OneToOneField(
        "models.User", related_name="wallet", primary_key=True, on_delete=fields.CASCADE
    )
    user_id: uuid.UUID
    cash_cents = fields.BigIntField(default=0)
    credit_cents = fields.BigIntField(default=0)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "wallets"


class LedgerTransaction(Entity):
    """One business event (deposit, grant, funding, settlement, refund); its postings sum to zero."""

    kind = fields.CharField(max_length=30)  # LedgerKind
    memo = fields.CharField(max_length=300, default="")
    user: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="ledger_transactions", null=True, on_delete=fields.RESTRICT
    )
    user_id: uuid.UUID | None
    project: fields.ForeignKeyNullableRelation[Project] = fields.ForeignKeyField(
        "models.Project", related_name="ledger_transactions", null=True, on_delete=fields.RESTRICT
    )
    project_id: uuid.UUID | None
    # Runs are typed as plain models here: money code never imports runs (runs import funding).
    run: fields.ForeignKeyNullableRelation[Model] = fields.ForeignKeyField(
        "models.Run", related_name="ledger_transactions", null=True, on_delete=fields.RESTRICT
    )
    run_id: uuid.UUID | None

    class Meta:
        table = "ledger_transactions"


class LedgerPosting(Model):
    id = fields.BigIntField(primary_key=True)
    transaction: fields.ForeignKeyRelation[LedgerTransaction] = fields.ForeignKeyField(
        "models.LedgerTransaction", related_name="postings", on_delete=fields.RESTRICT
    )
    transaction_id: uuid.UUID
    # e.g. "user:<uuid>:cash", "user:<uuid>:credit", "run:<uuid>:escrow", "project:<uuid>:balance",
    # "platform:revenue", "platform:credit_grants", "external:stripe" (see app.funding.ledger)
    account = fields.CharField(max_length=80)
    amount_cents = fields.BigIntField()

    class Meta:
        table = "ledger_postings"
        # Account history pages look postings up by account, then join their transactions.
        indexes = (("transaction_id", "account"), ("account", "transaction_id"))


class Funding(Entity):
    run: fields.ForeignKeyRelation[Model] = fields.ForeignKeyField(
        "models.Run", related_name="fundings", on_delete=fields.RESTRICT
    )
    run_id: uuid.UUID
    funder: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="fundings", on_delete=fields.RESTRICT
    )
    funder_id: uuid.UUID
    amount_cents = fields.BigIntField()
    credit_cents = fields.BigIntField(default=0)
    cash_cents = fields.BigIntField(default=0)
    # Funded from the project balance by its owner (then credit/cash are 0).
    project_balance_cents = fields.BigIntField(default=0)
    surplus_policy = fields.CharField(max_length=20, default=SurplusPolicy.TO_PROJECT.value)  # SurplusPolicy
    # Set at settlement: back to where the money came from, and surplus kept by the project.
    refunded_cents = fields.BigIntField(default=0)
    to_project_cents = fields.BigIntField(default=0)
    # Until the run's creator and project owner are told (RUN_FUNDED, app.notifications.funded):
    # the run's funded total right after this funding, which the notice reports; then NULL.
    notice_funded_cents = fields.BigIntField(null=True)

    class Meta:
        table = "fundings"
        indexes = (("run_id", "created_at"), ("funder_id", "created_at"))


class Settlement(Entity):
    """A run's escrow closed, once: the actual cost to revenue and the rest back (or all refunded)."""

    run: fields.OneToOneRelation[Model] = fields.OneToOneField(
        "models.Run", related_name="settlement", on_delete=fields.RESTRICT
    )
    run_id: uuid.UUID
    kind = fields.CharField(max_length=20)  # SettlementKind
    escrow_cents = fields.BigIntField()
    cost_cents = fields.BigIntField()
    refunded_cents = fields.BigIntField()
    to_project_cents = fields.BigIntField()
    detail: fields.JSONField[dict[str, Any]] = fields.JSONField(default=dict)

    class Meta:
        table = "settlements"


class Deposit(Entity):
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="deposits", on_delete=fields.RESTRICT
    )
    user_id: uuid.UUID
    amount_cents = fields.BigIntField()
    payment_intent_id = fields.CharField(max_length=100, unique=True)
    status = fields.CharField(max_length=20, default=DepositStatus.PENDING.value)  # DepositStatus
    completed_at = fields.DatetimeField(null=True)

    class Meta:
        table = "deposits"
        indexes = (("user_id", "created_at"),)


class StripeEvent(Model):
    """Stripe event ids already applied: a replayed webhook is a no-op."""

    id = fields.CharField(max_length=100, primary_key=True)
    type = fields.CharField(max_length=100)
    received_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "stripe_events"


class IdempotencyRecord(Model):
    """First result of a mutation retried with the same key by the same user."""

    id = fields.BigIntField(primary_key=True)
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="idempotency_records", on_delete=fields.CASCADE
    )
    user_id: uuid.UUID
    scope = fields.CharField(max_length=40)
    key = fields.CharField(max_length=200)
    result_id = fields.UUIDField()
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "idempotency_records"
        unique_together = (("user", "scope", "key"),)

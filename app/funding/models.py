"""Money at rest. Integer cents everywhere; every movement is a balanced ledger transaction."""

from tortoise import fields
from tortoise.models import Model

from app.models_base import Entity


class Wallet(Model):
    user = fields.OneToOneField("models.User", related_name="wallet", primary_key=True, on_delete=fields.CASCADE)
    cash_cents = fields.BigIntField(default=0)
    credit_cents = fields.BigIntField(default=0)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "wallets"


class LedgerTransaction(Entity):
    """One business event (deposit, grant, funding, settlement, refund); its postings sum to zero."""

    kind = fields.CharField(max_length=30)
    memo = fields.CharField(max_length=300, default="")
    user = fields.ForeignKeyField("models.User", related_name="ledger_transactions", null=True,
                                  on_delete=fields.RESTRICT)
    project = fields.ForeignKeyField("models.Project", related_name="ledger_transactions", null=True,
                                     on_delete=fields.RESTRICT)
    run = fields.ForeignKeyField("models.Run", related_name="ledger_transactions", null=True,
                                 on_delete=fields.RESTRICT)

    class Meta:
        table = "ledger_transactions"


class LedgerPosting(Model):
    id = fields.BigIntField(primary_key=True)
    transaction = fields.ForeignKeyField("models.LedgerTransaction", related_name="postings",
                                         on_delete=fields.RESTRICT)
    # e.g. "user:<uuid>:cash", "user:<uuid>:credit", "run:<uuid>:escrow", "project:<uuid>:balance",
    # "platform:revenue", "platform:credit_grants", "external:stripe"
    account = fields.CharField(max_length=80, db_index=True)
    amount_cents = fields.BigIntField()

    class Meta:
        table = "ledger_postings"


class Funding(Entity):
    run = fields.ForeignKeyField("models.Run", related_name="fundings", on_delete=fields.RESTRICT)
    funder = fields.ForeignKeyField("models.User", related_name="fundings", on_delete=fields.RESTRICT)
    amount_cents = fields.BigIntField()
    credit_cents = fields.BigIntField(default=0)
    cash_cents = fields.BigIntField(default=0)
    # Funded from the project balance by its owner (then credit/cash are 0).
    project_balance_cents = fields.BigIntField(default=0)
    surplus_policy = fields.CharField(max_length=20, default="to_project")
    refunded_cents = fields.BigIntField(default=0)

    class Meta:
        table = "fundings"


class Deposit(Entity):
    user = fields.ForeignKeyField("models.User", related_name="deposits", on_delete=fields.RESTRICT)
    amount_cents = fields.BigIntField()
    payment_intent_id = fields.CharField(max_length=100, unique=True)
    status = fields.CharField(max_length=20, default="pending")
    completed_at = fields.DatetimeField(null=True)

    class Meta:
        table = "deposits"


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
    user = fields.ForeignKeyField("models.User", related_name="idempotency_records", on_delete=fields.CASCADE)
    scope = fields.CharField(max_length=40)
    key = fields.CharField(max_length=200)
    result_id = fields.UUIDField()
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "idempotency_records"
        unique_together = (("user", "scope", "key"),)

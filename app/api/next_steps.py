"""What a client should do next, for every error code: `recommendedAction` on each typed
`Error` payload and in each GraphQL error's `extensions`, and the error table of the agent guide
(`/agent-guide.md`), so the three never disagree.

Typed results (`ErrorCode`) come first, then the codes of GraphQL errors (access, addressing,
limits, outages) that are not typed results.
"""

from __future__ import annotations

from app.core.errors import ErrorCode

TYPED: dict[ErrorCode, str] = {
    ErrorCode.VALIDATION_FAILED: "Fix every field listed in `fields`, then send the request again; nothing was "
                                 "changed.",
    ErrorCode.INVALID_CREDENTIALS: "Check the email and password; do not retry in a loop (logins are rate "
                                   "limited).",
    ErrorCode.ALREADY_EXISTS: "Choose another value (e.g. another handle or email); nothing was changed.",
    ErrorCode.INSUFFICIENT_FUNDS: "Fund at most `availableCents`, or ask your human to deposit in Settings → "
                                  "Wallet; nothing was charged.",
    ErrorCode.RUN_NOT_FUNDABLE: "Only runs in AWAITING_FUNDING take money: re-read the run's `status` (and "
                                "`fundingGapCents`); nothing was charged.",
    ErrorCode.INVALID_STATE: "Re-read the object: its current state does not allow this. Do not retry unchanged.",
    ErrorCode.VERSION_CONFLICT: "Someone edited it first: rebuild your edit on `currentBody` and retry with "
                                "`currentVersion` as the base version.",
    ErrorCode.EDIT_NOT_APPLICABLE: "An `oldText` did not match exactly once: re-read the current text and send "
                                   "edits that match it.",
    ErrorCode.MLPROJECT_ERROR: "Fix the MLproject file (see `reason` and `message`), push, and retry; copyRun "
                               "resolves the branch again.",
    ErrorCode.GIT_ERROR: "Check the repository URL and version (`reason`: UNKNOWN_REF, REPO_UNREACHABLE, …); "
                         "use a public https:// repository.",
    ErrorCode.PAYMENTS_NOT_CONFIGURED: "Deposits are off on this platform: ask an administrator for credit.",
    ErrorCode.RATE_LIMITED: "Wait `retryAfterSeconds`, then send the same request again (with the same "
                            "idempotency key, if it had one).",
}

GRAPHQL: dict[str, str] = {
    "UNAUTHENTICATED": "Send `Authorization: Bearer mlp_sk_…` with an API key your human created in Settings → "
                       "API keys.",
    "FORBIDDEN": "This needs another role (project owner, run creator, admin, or a human session): do not retry.",
    "NOT_FOUND": "Check the id: use ids exactly as the API returned them (they are global, typed ids).",
    "BAD_USER_INPUT": "Fix the argument the message names (ids, cursors, page sizes, lengths), then retry.",
    "GRAPHQL_VALIDATION_FAILED": "The document does not match the schema: check field and argument names "
                                 "(/schema.graphql).",
    "RATE_LIMITED": TYPED[ErrorCode.RATE_LIMITED],
    "SERVICE_UNAVAILABLE": "A dependency is down for a moment: wait `retryAfterSeconds` and retry.",
    "INTERNAL_SERVER_ERROR": "Retry once; if it persists, report it with submitFeedback, quoting `traceId`.",
}


def recommended_action(code: ErrorCode | str | None) -> str | None:
    if isinstance(code, ErrorCode):
        return TYPED[code]
    return GRAPHQL.get(code or "")

"""The documented bounds of every input (README, "Input limits").

`app/api/input_policy.py` applies them to every argument of the schema before any resolver
runs; the services check the same constants (plus what only they know, e.g. empty titles). A text field's limit is
found by `InputType.field`, then by field name, then by its GraphQL type (`ID`, `String`).
"""

from __future__ import annotations

# ---- text: maximum length in characters, per kind of field ------------------------------
NAME = 100  # API key names, display names, handles, GPU/machine types, entry points
TITLE = 200  # project, run, discussion and feedback titles
EMAIL = 254  # RFC 5321
PASSWORD = 1024  # argon2 hashes any length; this bounds the hashing work
URL = 2048  # git URLs (app/execution/git.py enforces the same)
VERSION = 255  # branch, tag or commit
KEY = 200  # idempotency keys
METRIC_KEY = 250  # MLflow's own limit
SEARCH = 200  # search terms
TOKEN = 512  # unsubscribe tokens
SHORT_TEXT = 300  # edit summaries, bios
REASON = 200  # ledger reasons (credit grants)
BODY = 100_000  # notes (Markdown), patch texts
DISCUSSION = 50_000  # discussion bodies
COMMENT = 20_000
FEEDBACK = 10_000
ID = 256  # global ids and cursors
TEXT = 1000  # any other String argument

TEXT_LIMITS: dict[str, int] = {
    "name": NAME, "displayName": NAME, "handle": NAME, "gpuType": NAME, "machineType": NAME, "entryPoint": NAME,
    "title": TITLE,
    "email": EMAIL, "password": PASSWORD,
    "gitUrl": URL, "uri": URL, "version": VERSION,
    "idempotencyKey": KEY, "key": METRIC_KEY, "keys": METRIC_KEY, "search": SEARCH, "token": TOKEN,
    "editSummary": SHORT_TEXT, "reason": REASON, "bio": SHORT_TEXT,
    "notes": BODY, "body": BODY, "oldText": BODY, "newText": BODY, "description": FEEDBACK,
    "after": ID, "before": ID,
    "CreateCommentInput.body": COMMENT, "UpdateCommentInput.body": COMMENT,
    "CreateDiscussionInput.body": DISCUSSION, "CreateProjectDiscussionInput.body": DISCUSSION,
    "UpdateDiscussionInput.body": DISCUSSION,
    "ID": ID, "String": TEXT,
}

# ---- numbers: inclusive bounds of Int arguments, by field name ---------------------------
MAX_CENTS = 10_000_000  # one funding, grant or deposit ($100,000; app/funding/money.py)
MAX_PAGE = 100
MAX_LOG_TAIL = 5000
MAX_LOG_BATCH = 500
MAX_GPUS = 64
MAX_VERSION = 2**31 - 1

INT_BOUNDS: dict[str, tuple[int, int]] = {
    "first": (0, MAX_PAGE), "last": (0, MAX_PAGE),
    "tail": (0, MAX_LOG_TAIL), "maxLines": (1, MAX_LOG_BATCH), "afterSeq": (0, MAX_VERSION),
    "amountCents": (1, MAX_CENTS), "gpuCount": (1, MAX_GPUS),
    "baseVersion": (1, MAX_VERSION), "notesBaseVersion": (1, MAX_VERSION), "bodyBaseVersion": (1, MAX_VERSION),
}
INT_DEFAULT = (-(2**31), 2**31 - 1)  # GraphQL's Int; the bound for any other Int argument
# Characters of a number literal in a document or in JSON: Python refuses to convert integers of
# more than 4300 digits (and converting long ones takes quadratic time).
NUMBER_LITERAL = 100

# ---- run parameters (the `JSON` arguments) ------------------------------------------------
PARAMS = 100  # entries in a run's parameters
PARAM_NAME = 250  # MLflow's key limit
PARAM_VALUE = 1000  # one parameter value as text
PARAM_MAGNITUDE = 1e15  # |number| of a numeric parameter or dryrun override
JSON_DEPTH = 3  # parameters are flat: an object of scalars

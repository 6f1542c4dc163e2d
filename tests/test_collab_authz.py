"""Authorization matrix for every notes/discussion/notification/feedback mutation:
anonymous → UNAUTHENTICATED, an unrelated user → FORBIDDEN (or NOT_FOUND for private rows)
where ownership matters, the rightful actor → success. Refused calls change nothing: the
rightful call that follows still works from the same base version."""

from __future__ import annotations

from typing import Any

from tests.client import GraphQLClient
from tests.test_discussions import comment_on, discussion_in, project_of


def _m(name: str, input_type: str, optional: bool = False) -> str:
    bang = "" if optional else "!"
    return f"mutation($i: {input_type}{bang}) {{ {name}(input: $i) {{ __typename }} }}"


async def _check(
    anon: GraphQLClient, doc: str, variables: dict[str, Any], *, refused: list[tuple[Any, str]], actor: Any,
    success: str, anonymous: str | None = "UNAUTHENTICATED",
) -> None:
    name = doc.split("{", 2)[1].split("(")[0].strip()
    if anonymous:
        assert (await anon.error(doc, variables))["extensions"]["code"] == anonymous, name
    for person, code in refused:
        err = await person.agent.error(doc, variables)
        assert err["extensions"]["code"] == code, (name, person.handle, err)
    result = await actor.agent.data(doc, variables)
    assert result[name]["__typename"] == success, (name, result)


async def test_authorization_matrix(make_person, client: GraphQLClient) -> None:
    owner, author, stranger = await make_person("zowner"), await make_person("zauthor"), await make_person("zx")
    admin = await make_person("zadmin", admin=True)
    pid = await project_of(owner)
    d = (await discussion_in(author, pid, "main"))["id"]
    d_delete = (await discussion_in(author, pid, "to delete"))["id"]
    platform = (await discussion_in(author, None, "platform"))["id"]
    c = (await comment_on(author, d, "a comment"))["id"]
    edit = {"baseVersion": 1, "edits": [{"oldText": "a", "newText": "an edited"}]}
    [note] = (await owner.agent.data("{ notifications(first: 1) { edges { node { id } } } }"))["notifications"]["edges"]

    # Notes and bodies: owner / author only.
    await _check(client, _m("patchProjectNotes", "PatchTextInput"),
                 {"i": {"id": pid, "baseVersion": 1, "edits": [{"oldText": "", "newText": "x"}]}},
                 refused=[(stranger, "FORBIDDEN"), (author, "FORBIDDEN")], actor=owner, success="ValidationFailed")
    await owner.agent.data('mutation($id: ID!) { updateProject(input: {id: $id, notes: "a notebook"}) '
                           "{ __typename } }", {"id": pid})
    await _check(client, _m("patchProjectNotes", "PatchTextInput"), {"i": {"id": pid, **edit, "baseVersion": 2}},
                 refused=[(stranger, "FORBIDDEN"), (author, "FORBIDDEN")], actor=owner, success="ProjectSuccess")
    await _check(client, _m("updateDiscussion", "UpdateDiscussionInput"), {"i": {"id": d, "title": "renamed"}},
                 refused=[(stranger, "FORBIDDEN"), (owner, "FORBIDDEN"), (admin, "FORBIDDEN")], actor=author,
                 success="DiscussionSuccess")
    await _check(client, _m("patchDiscussionBody", "PatchTextInput"),
                 {"i": {"id": d, "baseVersion": 1, "edits": [{"oldText": "Tried", "newText": "Did you try"}]}},
                 refused=[(stranger, "FORBIDDEN"), (owner, "FORBIDDEN")], actor=author, success="DiscussionSuccess")
    await _check(client, _m("updateComment", "UpdateCommentInput"), {"i": {"id": c, "body": "a reworded comment"}},
                 refused=[(stranger, "FORBIDDEN"), (owner, "FORBIDDEN")], actor=author, success="CommentSuccess")
    await _check(client, _m("patchCommentBody", "PatchTextInput"), {"i": {"id": c, **edit, "baseVersion": 2}},
                 refused=[(stranger, "FORBIDDEN"), (owner, "FORBIDDEN")], actor=author, success="CommentSuccess")

    # Moderation: project owner or admin; platform discussions: admin.
    await _check(client, _m("pinDiscussion", "DiscussionIdInput"), {"i": {"id": d}},
                 refused=[(stranger, "FORBIDDEN"), (author, "FORBIDDEN")], actor=owner, success="DiscussionSuccess")
    await _check(client, _m("unpinDiscussion", "DiscussionIdInput"), {"i": {"id": d}},
                 refused=[(stranger, "FORBIDDEN"), (author, "FORBIDDEN")], actor=admin, success="DiscussionSuccess")
    await _check(client, _m("pinDiscussion", "DiscussionIdInput"), {"i": {"id": platform}},
                 refused=[(owner, "FORBIDDEN"), (author, "FORBIDDEN")], actor=admin, success="DiscussionSuccess")
    await _check(client, _m("deleteComment", "CommentIdInput"), {"i": {"id": c}},
                 refused=[(stranger, "FORBIDDEN")], actor=owner, success="CommentSuccess")
    await _check(client, _m("deleteDiscussion", "DiscussionIdInput"), {"i": {"id": d_delete}},
                 refused=[(stranger, "FORBIDDEN")], actor=owner, success="DiscussionSuccess")
    await _check(client, _m("deleteDiscussion", "DiscussionIdInput"), {"i": {"id": platform}},
                 refused=[(stranger, "FORBIDDEN"), (owner, "FORBIDDEN")], actor=admin, success="DiscussionSuccess")

    # Anyone signed in.
    await _check(client, _m("createProjectDiscussion", "CreateProjectDiscussionInput"),
                 {"i": {"projectId": pid, "title": "t", "body": "b"}}, refused=[], actor=stranger,
                 success="DiscussionSuccess")
    await _check(client, _m("createDiscussion", "CreateDiscussionInput"), {"i": {"title": "t", "body": "b"}},
                 refused=[], actor=stranger, success="DiscussionSuccess")
    await _check(client, _m("createComment", "CreateCommentInput"), {"i": {"discussionId": d, "body": "hi"}},
                 refused=[], actor=stranger, success="CommentSuccess")
    for name in ("followProject", "unfollowProject"):
        await _check(client, _m(name, "FollowProjectInput"), {"i": {"projectId": pid}}, refused=[], actor=stranger,
                     success="FollowProjectSuccess")
    await _check(client, _m("markAllNotificationsRead", "MarkAllNotificationsReadInput", optional=True), {},
                 refused=[], actor=stranger, success="MarkAllNotificationsReadSuccess")
    await _check(client, _m("updateNotificationPreferences", "UpdateNotificationPreferencesInput"),
                 {"i": {"preferences": [{"kind": "NEW_COMMENT", "email": False}]}}, refused=[], actor=stranger,
                 success="NotificationPreferencesSuccess")
    await _check(client, _m("submitFeedback", "SubmitFeedbackInput"),
                 {"i": {"type": "QUESTION", "title": "t", "description": "d"}}, refused=[], actor=stranger,
                 success="SubmitFeedbackSuccess")

    # Private rows: someone else's notification does not exist for you.
    await _check(client, _m("markNotificationRead", "MarkNotificationReadInput"), {"i": {"id": note["node"]["id"]}},
                 refused=[(stranger, "NOT_FOUND")], actor=owner, success="MarkNotificationReadSuccess")
    # The unsubscribe token is the credential: no login, an unknown token is a typed error.
    unsubscribe = _m("unsubscribe", "UnsubscribeInput")
    assert (await client.data(unsubscribe, {"i": {"token": "nope"}}))["unsubscribe"]["__typename"] == \
        "ValidationFailed"

    for query in ("{ notifications { edges { node { id } } } }", "{ unreadNotificationCount }",
                  "{ notificationPreferences { kind } }", "{ feedback { edges { node { id } } } }"):
        assert (await client.error(query))["extensions"]["code"] == "UNAUTHENTICATED", query
    assert (await stranger.agent.error("{ feedback { edges { node { id } } } }"))["extensions"]["code"] == "FORBIDDEN"
    assert (await admin.agent.data("{ feedback(first: 1) { edges { node { type } } } }"))["feedback"]["edges"]

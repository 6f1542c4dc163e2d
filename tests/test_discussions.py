"""Discussions: project/platform lists, pin + activity order, threads, edits, soft delete, limits."""

from __future__ import annotations

import asyncio
import base64

from tests.client import GraphQLClient
from tests.test_notes import HOSTILE, assert_inert
from tests.ws import WsClient

CREATE_PROJECT = """mutation($i: CreateProjectInput!) { createProject(input: $i) {
  ... on ProjectSuccess { project { id } } } }"""
DISCUSSION = """... on DiscussionSuccess { discussion { id title body bodyHtml bodyVersion isPinned isDeleted
  commentCount author { handle } project { id } } }
  ... on ValidationFailed { code fields { field message } }"""
CONFLICT = " ... on VersionConflict { currentVersion currentBody } ... on InvalidStateError { code message }"
NOT_APPLICABLE = " ... on EditNotApplicable { editIndex matchCount }"
CREATE_IN_PROJECT = ("mutation($i: CreateProjectDiscussionInput!) { createProjectDiscussion(input: $i) { __typename "
                     + DISCUSSION + " } }")
CREATE_PLATFORM = "mutation($i: CreateDiscussionInput!) { createDiscussion(input: $i) { __typename " + DISCUSSION + " } }"
UPDATE = ("mutation($i: UpdateDiscussionInput!) { updateDiscussion(input: $i) { __typename " + DISCUSSION + CONFLICT
          + " } }")
PATCH_DISCUSSION = ("mutation($i: PatchTextInput!) { patchDiscussionBody(input: $i) { __typename " + DISCUSSION
                    + CONFLICT + NOT_APPLICABLE + " } }")
DELETE = "mutation($i: DiscussionIdInput!) { deleteDiscussion(input: $i) { discussion { id isDeleted } } }"
PIN = "mutation($i: DiscussionIdInput!) { pinDiscussion(input: $i) { __typename } }"
UNPIN = "mutation($i: DiscussionIdInput!) { unpinDiscussion(input: $i) { __typename } }"
COMMENT_FIELDS = """... on CommentSuccess { comment { id body bodyHtml bodyVersion depth isDeleted author { handle }
  parent { id } } }
  ... on ValidationFailed { code fields { field message } }
  ... on InvalidStateError { code message }"""
COMMENT = "mutation($i: CreateCommentInput!) { createComment(input: $i) { __typename " + COMMENT_FIELDS + " } }"
UPDATE_COMMENT = ("mutation($i: UpdateCommentInput!) { updateComment(input: $i) { __typename " + COMMENT_FIELDS
                  + CONFLICT + " } }")
PATCH_COMMENT = ("mutation($i: PatchTextInput!) { patchCommentBody(input: $i) { __typename " + COMMENT_FIELDS
                 + CONFLICT + NOT_APPLICABLE + " } }")
DELETE_COMMENT = "mutation($i: CommentIdInput!) { deleteComment(input: $i) { comment { id isDeleted body } } }"
LIST = """query($p: ID, $first: Int, $after: String) { discussions(projectId: $p, first: $first, after: $after) {
  edges { node { title isPinned } } pageInfo { hasNextPage endCursor } } }"""
THREAD = """query($id: ID!, $first: Int, $after: String) { discussion(id: $id) { title body isDeleted author { handle }
  commentCount comments(first: $first, after: $after) { edges { node { id body depth isDeleted author { handle }
  parent { id } } } pageInfo { hasNextPage endCursor } } bodyHistory { edges { node { version body } } } } }"""


async def project_of(person) -> str:
    data = await person.web.data(CREATE_PROJECT, {"i": {"title": "Disc", "gitUrl": "https://example.com/r.git"}})
    return data["createProject"]["project"]["id"]


async def discussion_in(person, project_id: str | None, title: str = "Batch size?", body: str = "Tried 512?") -> dict:
    if project_id is None:
        data = await person.web.data(CREATE_PLATFORM, {"i": {"title": title, "body": body}})
        return data["createDiscussion"]["discussion"]
    data = await person.web.data(CREATE_IN_PROJECT, {"i": {"projectId": project_id, "title": title, "body": body}})
    return data["createProjectDiscussion"]["discussion"]


async def comment_on(person, discussion_id: str, body: str, parent: str | None = None) -> dict:
    data = await person.web.data(COMMENT, {"i": {"discussionId": discussion_id, "parentId": parent, "body": body}})
    assert data["createComment"]["__typename"] == "CommentSuccess", data
    return data["createComment"]["comment"]


async def _titles(client: GraphQLClient, project_id: str | None) -> list[tuple[str, bool]]:
    page = (await client.data(LIST, {"p": project_id, "first": 100}))["discussions"]
    return [(e["node"]["title"], e["node"]["isPinned"]) for e in page["edges"]]


async def test_project_and_platform_discussions_pinned_first_then_activity(make_person, client) -> None:
    owner, patron = await make_person("downer"), await make_person("dpatron")
    pid = await project_of(owner)
    first = await discussion_in(patron, pid, "first")
    second = await discussion_in(patron, pid, "second")
    await discussion_in(owner, pid, "third")
    assert first["project"]["id"] == pid and first["author"]["handle"] == patron.handle and first["bodyVersion"] == 1
    platform = await discussion_in(patron, None, f"platform {patron.handle}")
    assert platform["project"] is None

    assert await _titles(client, pid) == [("third", False), ("second", False), ("first", False)]
    await comment_on(owner, first["id"], "bump")  # activity moves it up
    assert [t for t, _ in await _titles(client, pid)] == ["first", "third", "second"]
    assert (await owner.agent.data(PIN, {"i": {"id": second["id"]}}))["pinDiscussion"]["__typename"] == \
        "DiscussionSuccess"
    assert await _titles(client, pid) == [("second", True), ("first", False), ("third", False)]
    via_project = await client.data("query($id: ID!) { project(id: $id) { discussions(first: 2) { edges { node { "
                                    "title } } pageInfo { hasNextPage endCursor } } } }", {"id": pid})
    conn = via_project["project"]["discussions"]
    assert [e["node"]["title"] for e in conn["edges"]] == ["second", "first"] and conn["pageInfo"]["hasNextPage"]
    rest = (await client.data(LIST, {"p": pid, "first": 2, "after": conn["pageInfo"]["endCursor"]}))["discussions"]
    assert [e["node"]["title"] for e in rest["edges"]] == ["third"]
    await owner.agent.data(UNPIN, {"i": {"id": second["id"]}})
    assert [t for t, _ in await _titles(client, pid)] == ["first", "third", "second"]

    platform_titles = [t for t, _ in await _titles(client, None)]
    assert f"platform {patron.handle}" in platform_titles and "first" not in platform_titles


async def test_comments_are_threaded_depth_first_and_paginate(make_person, client) -> None:
    owner, patron = await make_person("towner"), await make_person("tpatron")
    discussion = await discussion_in(patron, await project_of(owner))
    c1 = await comment_on(owner, discussion["id"], "c1")
    c2 = await comment_on(patron, discussion["id"], "c2")
    r1 = await comment_on(patron, discussion["id"], "r1", parent=c1["id"])
    rr = await comment_on(owner, discussion["id"], "rr", parent=r1["id"])
    r2 = await comment_on(owner, discussion["id"], "r2", parent=c1["id"])
    assert (r1["depth"], rr["depth"], r1["parent"]["id"]) == (1, 2, c1["id"])

    seen, after = [], None
    while True:
        page = (await client.data(THREAD, {"id": discussion["id"], "first": 2, "after": after}))["discussion"]
        seen += [(e["node"]["body"], e["node"]["depth"]) for e in page["comments"]["edges"]]
        if not page["comments"]["pageInfo"]["hasNextPage"]:
            break
        after = page["comments"]["pageInfo"]["endCursor"]
    assert seen == [("c1", 0), ("r1", 1), ("rr", 2), ("r2", 1), ("c2", 0)]
    assert page["commentCount"] == 5 and r2["parent"]["id"] == c1["id"] and c2["parent"] is None


async def test_edit_patch_and_history_for_discussions_and_comments(make_person, client) -> None:
    author = await make_person("editor")
    discussion = await discussion_in(author, None, "Feature: sweeps", "Please add **sweeps**.")
    did = discussion["id"]
    stale_free = (await author.agent.data(UPDATE, {"i": {"id": did, "title": "Feature: param sweeps",
                                                         "body": "Please add sweeps over lr."}}))["updateDiscussion"]
    assert stale_free["discussion"]["title"] == "Feature: param sweeps"
    assert stale_free["discussion"]["bodyVersion"] == 2
    conflict = (await author.agent.data(UPDATE, {"i": {"id": did, "body": "x", "bodyBaseVersion": 1}}))
    assert conflict["updateDiscussion"] == {"__typename": "VersionConflict", "currentVersion": 2,
                                            "currentBody": "Please add sweeps over lr."}
    patched = (await author.agent.data(PATCH_DISCUSSION, {"i": {"id": did, "baseVersion": 2, "editSummary": "typo",
                                                               "edits": [{"oldText": "lr", "newText": "lr and wd"}]}}))
    assert patched["patchDiscussionBody"]["discussion"]["body"] == "Please add sweeps over lr and wd."
    title_only = (await author.agent.data(UPDATE, {"i": {"id": did, "title": "Sweeps"}}))["updateDiscussion"]
    assert title_only["discussion"]["bodyVersion"] == 3  # title is not versioned

    comment = await comment_on(author, did, "first take")
    wrong = (await author.agent.data(PATCH_COMMENT, {"i": {"id": comment["id"], "baseVersion": 1,
                                                          "edits": [{"oldText": "nope", "newText": "x"}]}}))
    assert wrong["patchCommentBody"] == {"__typename": "EditNotApplicable", "editIndex": 0, "matchCount": 0}
    ok = (await author.agent.data(PATCH_COMMENT, {"i": {"id": comment["id"], "baseVersion": 1,
                                                       "edits": [{"oldText": "first", "newText": "second"}]}}))
    assert ok["patchCommentBody"]["comment"]["body"] == "second take"
    replaced = (await author.agent.data(UPDATE_COMMENT, {"i": {"id": comment["id"], "body": "third take",
                                                              "bodyBaseVersion": 2}}))
    assert replaced["updateComment"]["comment"]["bodyVersion"] == 3

    history = await client.data("query($id: ID!) { node(id: $id) { ... on Comment { bodyHistory { edges { node { "
                                "version body editor { handle } } } } } } }", {"id": comment["id"]})
    assert [(e["node"]["version"], e["node"]["body"]) for e in history["node"]["bodyHistory"]["edges"]] == [
        (3, "third take"), (2, "second take"), (1, "first take")]
    thread = (await client.data(THREAD, {"id": did}))["discussion"]
    assert [e["node"]["version"] for e in thread["bodyHistory"]["edges"]] == [3, 2, 1]


async def test_soft_delete_keeps_thread_shape(make_person, client) -> None:
    owner, author, other = await make_person("sowner"), await make_person("sauthor"), await make_person("sother")
    discussion = await discussion_in(author, await project_of(owner))
    parent = await comment_on(other, discussion["id"], "secret opinion")
    await comment_on(author, discussion["id"], "reply", parent=parent["id"])

    deleted = (await owner.agent.data(DELETE_COMMENT, {"i": {"id": parent["id"]}}))["deleteComment"]["comment"]
    assert deleted == {"id": parent["id"], "isDeleted": True, "body": "[deleted]"}
    thread = (await client.data(THREAD, {"id": discussion["id"]}))["discussion"]
    nodes = [e["node"] for e in thread["comments"]["edges"]]
    assert [(n["body"], n["author"], n["isDeleted"]) for n in nodes] == [
        ("[deleted]", None, True), ("reply", {"handle": author.handle}, False)]
    assert nodes[1]["parent"]["id"] == parent["id"]
    hidden = await client.data("query($id: ID!) { node(id: $id) { ... on Comment { bodyHistory { edges { node { "
                               "body } } } } } }", {"id": parent["id"]})
    assert hidden["node"]["bodyHistory"]["edges"] == []
    into_deleted = (await other.agent.data(COMMENT, {"i": {"discussionId": discussion["id"], "parentId": parent["id"],
                                                           "body": "hm"}}))["createComment"]
    assert into_deleted["__typename"] == "InvalidStateError"
    edit_deleted = (await other.agent.data(UPDATE_COMMENT, {"i": {"id": parent["id"], "body": "back"}}))
    assert edit_deleted["updateComment"]["__typename"] == "InvalidStateError"

    gone = (await author.agent.data(DELETE, {"i": {"id": discussion["id"]}}))["deleteDiscussion"]["discussion"]
    assert gone["isDeleted"] is True
    again = (await author.agent.data(DELETE, {"i": {"id": discussion["id"]}}))["deleteDiscussion"]["discussion"]
    assert again["isDeleted"] is True  # idempotent
    shown = (await client.data(THREAD, {"id": discussion["id"]}))["discussion"]
    assert (shown["title"], shown["body"], shown["author"], shown["isDeleted"]) == ("[deleted]", "[deleted]", None, True)
    assert len(shown["comments"]["edges"]) == 2 and shown["bodyHistory"]["edges"] == []
    refused = (await other.agent.data(COMMENT, {"i": {"discussionId": discussion["id"], "body": "late"}}))
    assert refused["createComment"]["__typename"] == "InvalidStateError"
    assert (await owner.agent.data(PIN, {"i": {"id": discussion["id"]}}))["pinDiscussion"]["__typename"] == \
        "InvalidStateError"
    assert shown["commentCount"] == 2
    listed = (await client.data(LIST, {"p": discussion["project"]["id"]}))["discussions"]["edges"]
    assert listed == []


ACTIVITY = "subscription($p: ID!) { projectActivity(projectId: $p, afterSeq: 0) { kind payload } }"


async def test_edits_and_deletions_reach_the_project_activity_stream(api: str, make_person) -> None:
    """Open pages follow `projectActivity`: every edit (replace or patch) and deletion of a post shows there."""
    owner, fan = await make_person("owner"), await make_person("fan")
    project = await project_of(owner)
    discussion = await discussion_in(fan, project, body="first words")
    comment = await comment_on(owner, discussion["id"], "a reply")
    ids = {"discussionId": discussion["id"]}
    done = [
        (await fan.web.data(UPDATE, {"i": {"id": discussion["id"], "title": "Renamed", "body": "first words!"}}))
        ["updateDiscussion"],
        (await fan.web.data(PATCH_DISCUSSION, {"i": {"id": discussion["id"], "baseVersion": 2,
                                                     "edits": [{"oldText": "first", "newText": "better"}]}}))
        ["patchDiscussionBody"],
        (await owner.web.data(UPDATE_COMMENT, {"i": {"id": comment["id"], "body": "a better reply"}}))["updateComment"],
        (await owner.web.data(PATCH_COMMENT, {"i": {"id": comment["id"], "baseVersion": 2,
                                                    "edits": [{"oldText": "better", "newText": "kind"}]}}))
        ["patchCommentBody"],
    ]
    assert [d["__typename"] for d in done] == ["DiscussionSuccess"] * 2 + ["CommentSuccess"] * 2, done
    await owner.web.data(DELETE_COMMENT, {"i": {"id": comment["id"]}})
    await fan.web.data(DELETE, {"i": {"id": discussion["id"]}})

    ws = await WsClient.connect(api)
    try:
        stream = ws.subscribe(ACTIVITY, {"p": project})
        async with asyncio.timeout(20):
            seen = [(await anext(stream))["projectActivity"] for _ in range(8)]
    finally:
        await ws.close()
    with_comment = {**ids, "commentId": comment["id"]}
    assert [(e["kind"], e["payload"]) for e in seen[2:]] == [
        ("discussion_edited", ids), ("discussion_edited", ids), ("comment_edited", with_comment),
        ("comment_edited", with_comment), ("comment_deleted", with_comment), ("discussion_deleted", ids),
    ]
    assert [e["kind"] for e in seen[:2]] == ["discussion", "comment"]


async def test_bad_input_is_refused_and_changes_nothing(make_person, client) -> None:
    from app.discussions.models import Comment, Discussion

    owner = await make_person("dbad")
    pid = await project_of(owner)
    target = await discussion_in(owner, pid)
    other = await discussion_in(owner, pid, "other")
    foreign = await comment_on(owner, other["id"], "elsewhere")
    before = (await Discussion.all().count(), await Comment.all().count())

    for bad, field in [({"title": "", "body": "b"}, "title"), ({"title": "t" * 201, "body": "b"}, "title"),
                       ({"title": "t", "body": "   "}, "body"), ({"title": "t", "body": "b" * 50_001}, "body")]:
        result = (await owner.agent.data(CREATE_IN_PROJECT, {"i": {"projectId": pid, **bad}}))
        assert result["createProjectDiscussion"]["__typename"] == "ValidationFailed"
        assert [f["field"] for f in result["createProjectDiscussion"]["fields"]] == [field]
    for body, parent, expected in [("", None, "ValidationFailed"), ("x" * 20_001, None, "ValidationFailed"),
                                   ("ok", foreign["id"], "ValidationFailed")]:
        result = await owner.web.data(COMMENT, {"i": {"discussionId": target["id"], "parentId": parent, "body": body}})
        assert result["createComment"]["__typename"] == expected, result
    empty_edit = await owner.web.data(PATCH_DISCUSSION, {"i": {"id": target["id"], "baseVersion": 1,
                                                               "edits": [{"oldText": "", "newText": "x"}]}})
    assert empty_edit["patchDiscussionBody"]["__typename"] == "ValidationFailed"
    emptied = await owner.web.data(PATCH_DISCUSSION, {"i": {"id": target["id"], "baseVersion": 1,
                                                            "edits": [{"oldText": "Tried 512?", "newText": ""}]}})
    assert emptied["patchDiscussionBody"]["fields"] == [{"field": "body", "message": "must not be empty"}]

    missing = base64.b64encode(b"Discussion:00000000-0000-0000-0000-000000000000").decode()
    err = await owner.web.error(COMMENT, {"i": {"discussionId": missing, "body": "x"}})
    assert err["extensions"]["code"] == "NOT_FOUND"
    err = await owner.web.error(COMMENT, {"i": {"discussionId": target["id"], "parentId": "garbage", "body": "x"}})
    assert err["extensions"]["code"] == "BAD_USER_INPUT"
    err = await owner.web.error(COMMENT, {"i": {"discussionId": pid, "body": "x"}})  # a Project id
    assert err["extensions"]["code"] == "BAD_USER_INPUT"
    missing_project = base64.b64encode(b"Project:00000000-0000-0000-0000-000000000000").decode()
    err = await owner.web.error(CREATE_IN_PROJECT, {"i": {"projectId": missing_project, "title": "t", "body": "b"}})
    assert err["extensions"]["code"] == "NOT_FOUND"

    assert (await Discussion.all().count(), await Comment.all().count()) == before
    unchanged = (await client.data(THREAD, {"id": target["id"]}))["discussion"]
    assert unchanged["body"] == "Tried 512?" and unchanged["commentCount"] == 0


async def test_discussion_and_comment_html_is_sanitised(make_person) -> None:
    person = await make_person("dxss")
    discussion = await discussion_in(person, None, "xss", HOSTILE)
    assert discussion["body"] == HOSTILE
    assert_inert(discussion["bodyHtml"])
    comment = await comment_on(person, discussion["id"], HOSTILE)
    assert_inert(comment["bodyHtml"])


async def test_rate_limits_per_user_stricter_for_api_keys(make_person) -> None:
    agent_user, human = await make_person("rlagent"), await make_person("rlhuman")
    for i in range(5):
        ok = await agent_user.agent.data(CREATE_PLATFORM, {"i": {"title": f"t{i}", "body": "b"}})
        assert ok["createDiscussion"]["__typename"] == "DiscussionSuccess"
    err = await agent_user.agent.error(CREATE_PLATFORM, {"i": {"title": "sixth", "body": "b"}})
    assert err["extensions"]["code"] == "RATE_LIMITED"
    assert 0 < err["extensions"]["retryAfter"] <= 3600 and err["extensions"]["traceId"]

    # A human in the web UI gets the higher ceiling.
    threads = [await discussion_in(human, None, f"h{i}") for i in range(10)]
    err = await human.web.error(CREATE_PLATFORM, {"i": {"title": "eleventh", "body": "b"}})
    assert err["extensions"]["code"] == "RATE_LIMITED"

    for i in range(15):
        ok = await agent_user.agent.data(COMMENT, {"i": {"discussionId": threads[0]["id"], "body": f"c{i}"}})
        assert ok["createComment"]["__typename"] == "CommentSuccess"
    err = await agent_user.agent.error(COMMENT, {"i": {"discussionId": threads[0]["id"], "body": "c16"}})
    assert err["extensions"]["code"] == "RATE_LIMITED" and err["extensions"]["retryAfter"] > 0


async def test_feedback_is_limited_per_day(make_person) -> None:
    from app.feedback.models import Feedback

    person = await make_person("fb")
    submit = """mutation($i: SubmitFeedbackInput!) { submitFeedback(input: $i) { __typename
      ... on SubmitFeedbackSuccess { feedback { type title description user { handle } } }
      ... on ValidationFailed { fields { field } } } }"""
    ok = await person.agent.data(submit, {"i": {"type": "BUG", "title": "Logs stop", "description": "after 10k"}})
    assert ok["submitFeedback"]["feedback"] == {"type": "BUG", "title": "Logs stop", "description": "after 10k",
                                                "user": {"handle": person.handle}}
    bad = await person.agent.data(submit, {"i": {"type": "FEATURE", "title": " ", "description": ""}})
    assert [f["field"] for f in bad["submitFeedback"]["fields"]] == ["title", "description"]
    for _ in range(9):  # the rejected draft did not count
        await person.web.data(submit, {"i": {"type": "QUESTION", "title": "q", "description": "d"}})
    err = await person.web.error(submit, {"i": {"type": "QUESTION", "title": "q", "description": "d"}})
    assert err["extensions"]["code"] == "RATE_LIMITED" and 0 < err["extensions"]["retryAfter"] <= 86400
    assert await Feedback.filter(user_id=person.user_id).count() == 10

"""Versioned notes: search/replace patches, optimistic locking under concurrency, history, safe HTML."""

from __future__ import annotations

import asyncio
from html.parser import HTMLParser

import pytest

from app.core.errors import ValidationError
from app.revisions.errors import EditNotApplicable
from app.revisions.services import TextEdit, apply_edits
from tests.client import GraphQLClient

CREATE_PROJECT = """mutation($i: CreateProjectInput!) { createProject(input: $i) {
  ... on ProjectSuccess { project { id notesVersion } } } }"""

PATCH = """mutation($i: PatchTextInput!) { patchProjectNotes(input: $i) { __typename
  ... on ProjectSuccess { project { notes notesVersion } }
  ... on VersionConflict { code currentVersion currentBody }
  ... on EditNotApplicable { code message editIndex matchCount }
  ... on ValidationFailed { code fields { field message } } } }"""

HISTORY = """query($id: ID!, $first: Int, $after: String) { project(id: $id) { notes notesVersion
  notesHistory(first: $first, after: $after) { edges { node { version body editSummary createdAt
    editor { handle } } } pageInfo { hasNextPage endCursor } } } }"""


async def _project(person, notes: str) -> str:
    data = await person.agent.data(CREATE_PROJECT, {"i": {"title": "Notes", "gitUrl": "https://example.com/r.git",
                                                          "notes": notes}})
    return data["createProject"]["project"]["id"]


def _patch(pid: str, base: int, *edits: tuple[str, str], summary: str = "") -> dict:
    return {"i": {"id": pid, "baseVersion": base, "editSummary": summary,
                  "edits": [{"oldText": o, "newText": n} for o, n in edits]}}


async def test_patch_applies_edits_in_order_and_records_history(make_person, client: GraphQLClient) -> None:
    owner = await make_person("notes")
    pid = await _project(owner, "## TODO\n- tune\n\n## Results\nnone yet\n")
    done = await owner.agent.data(PATCH, _patch(pid, 1, ("## TODO\n- tune", "## TODO\n- ~~tune~~\n- write report"),
                                                ("none yet", "loss 1.9"), summary="run 3 results"))
    assert done["patchProjectNotes"] == {"__typename": "ProjectSuccess", "project": {
        "notes": "## TODO\n- ~~tune~~\n- write report\n\n## Results\nloss 1.9\n", "notesVersion": 2}}
    # A later edit sees the result of an earlier one in the same patch.
    done = await owner.web.data(PATCH, _patch(pid, 2, ("loss 1.9", "loss 1.8"), ("loss 1.8", "loss 1.7")))
    assert done["patchProjectNotes"]["project"]["notesVersion"] == 3

    page = (await client.data(HISTORY, {"id": pid, "first": 2}))["project"]
    versions = [e["node"] for e in page["notesHistory"]["edges"]]
    assert [v["version"] for v in versions] == [3, 2]
    assert versions[0]["body"] == page["notes"] and versions[1]["editSummary"] == "run 3 results"
    assert versions[1]["editor"]["handle"] == owner.handle and page["notesHistory"]["pageInfo"]["hasNextPage"]
    older = (await client.data(HISTORY, {"id": pid, "first": 2, "after": page["notesHistory"]["pageInfo"]["endCursor"]}))
    [first] = [e["node"] for e in older["project"]["notesHistory"]["edges"]]
    assert first["version"] == 1 and first["body"] == "## TODO\n- tune\n\n## Results\nnone yet\n"
    assert not older["project"]["notesHistory"]["pageInfo"]["hasNextPage"]


async def test_concurrent_patches_from_one_base_have_exactly_one_winner(api: str, make_person) -> None:
    owner = await make_person("race")
    pid = await _project(owner, "status: draft\n")
    writers = [owner.web, owner.agent, GraphQLClient(api, owner.api_key), GraphQLClient(api, owner.api_key)]
    try:
        results = await asyncio.gather(*(
            w.data(PATCH, _patch(pid, 1, ("draft", f"final by writer {i}"))) for i, w in enumerate(writers)
        ))
    finally:
        await writers[2].close()
        await writers[3].close()
    outcomes = [r["patchProjectNotes"] for r in results]
    winners = [o for o in outcomes if o["__typename"] == "ProjectSuccess"]
    losers = [o for o in outcomes if o["__typename"] == "VersionConflict"]
    assert len(winners) == 1 and len(losers) == len(writers) - 1, outcomes
    winning_notes = winners[0]["project"]["notes"]
    assert winners[0]["project"]["notesVersion"] == 2
    assert all(lo == {"__typename": "VersionConflict", "code": "VERSION_CONFLICT", "currentVersion": 2,
                      "currentBody": winning_notes} for lo in losers)
    history = (await owner.agent.data(HISTORY, {"id": pid, "first": 10}))["project"]["notesHistory"]["edges"]
    assert [e["node"]["version"] for e in history] == [2, 1]
    assert history[0]["node"]["body"] == winning_notes


async def test_inapplicable_and_invalid_patches_change_nothing(make_person) -> None:
    owner = await make_person("badpatch")
    pid = await _project(owner, "alpha beta alpha\n")

    missing = (await owner.agent.data(PATCH, _patch(pid, 1, ("beta", "BETA"), ("gamma", "x"))))["patchProjectNotes"]
    assert missing["__typename"] == "EditNotApplicable" and missing["code"] == "EDIT_NOT_APPLICABLE"
    assert (missing["editIndex"], missing["matchCount"]) == (1, 0) and "Edit 1" in missing["message"]
    twice = (await owner.agent.data(PATCH, _patch(pid, 1, ("alpha", "x"))))["patchProjectNotes"]
    assert (twice["__typename"], twice["editIndex"], twice["matchCount"]) == ("EditNotApplicable", 0, 2)

    empty = (await owner.agent.data(PATCH, _patch(pid, 1, ("beta", "b"), ("", "x"))))["patchProjectNotes"]
    assert empty["__typename"] == "ValidationFailed"
    assert [f["field"] for f in empty["fields"]] == ["edits.1.oldText"]
    none = (await owner.agent.data(PATCH, _patch(pid, 1)))["patchProjectNotes"]
    assert none["__typename"] == "ValidationFailed" and none["fields"][0]["field"] == "edits"
    # Each text within its own limit (limits.BODY), the patched notes beyond it.
    huge = (await owner.agent.data(PATCH, _patch(pid, 1, ("beta", "b" * 100_000))))["patchProjectNotes"]
    assert huge["__typename"] == "ValidationFailed" and huge["fields"][0]["field"] == "notes"
    stale = (await owner.agent.data(PATCH, _patch(pid, 7, ("beta", "b"))))["patchProjectNotes"]
    assert stale == {"__typename": "VersionConflict", "code": "VERSION_CONFLICT", "currentVersion": 1,
                     "currentBody": "alpha beta alpha\n"}

    after = (await owner.agent.data(HISTORY, {"id": pid}))["project"]
    assert after["notes"] == "alpha beta alpha\n" and after["notesVersion"] == 1
    assert len(after["notesHistory"]["edges"]) == 1


class _Inspector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs += attrs


def assert_inert(html: str) -> None:
    """No script element, no event handler attribute, no javascript: URL anywhere in the markup."""
    parsed = _Inspector()
    parsed.feed(html)
    assert "script" not in parsed.tags and "img" not in parsed.tags, html
    assert not [a for a, _ in parsed.attrs if a.lower().startswith("on")], html
    assert not [v for _, v in parsed.attrs if v and v.strip().lower().startswith("javascript:")], html


HOSTILE = "# Results\n\n<script>alert(1)</script>\n\n<img src=x onerror=alert(1)>\n\n[x](javascript:alert(1)) **ok**"


async def test_notes_html_is_sanitised(make_person, client: GraphQLClient) -> None:
    owner = await make_person("xss")
    pid = await _project(owner, "draft")
    await owner.agent.data(PATCH, _patch(pid, 1, ("draft", HOSTILE)))
    project = (await client.data("query($id: ID!) { project(id: $id) { notes notesHtml } }", {"id": pid}))["project"]
    assert project["notes"] == HOSTILE  # stored as written
    assert_inert(project["notesHtml"])
    assert "<h1>Results</h1>" in project["notesHtml"] and "<strong>ok</strong>" in project["notesHtml"]


def test_apply_edits_is_strict_and_atomic() -> None:
    assert apply_edits("a-b-c", [TextEdit("a", "A"), TextEdit("A-b", "AB")]) == "AB-c"
    with pytest.raises(EditNotApplicable) as overlapping:
        apply_edits("aaa", [TextEdit("aa", "x")])  # overlapping matches are ambiguous too
    assert overlapping.value.match_count == 2
    with pytest.raises(ValidationError):
        apply_edits("abc", [TextEdit("", "x")])

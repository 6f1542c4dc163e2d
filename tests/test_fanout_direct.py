"""Direct events (app.api.fanout.direct_events): a log stream whose selection is plain sends, frame
for frame, the same bytes as strawberry's per-event execution, and anything else keeps strawberry."""

from __future__ import annotations

import asyncio
import json

import pytest
import websockets

from tests.test_fanout import finish, job, recorder  # noqa: F401 - fixtures

# Lines a serialiser could get wrong: quotes, backslashes, control characters, non-ASCII (2, 3 and
# 4 byte UTF-8), the JavaScript line separators, markup, an empty line and a long one.
LINES = ['say "hi"', "back\\slash \\n not a newline", "tab\there \x01\x1f", "ünïcödé ✓ 日本 🚀", "\u2028\u2029",
         "</script><!--", "", "x" * 5000, "  leading and trailing spaces  "]  # fmt: skip
# Every field of LogLine, aliases, __typename, a different order; batches of 4 lines (the last
# short); the same field under two aliases.
DOCUMENTS = [
    "subscription($id: ID!) { jobLogs(jobId: $id, afterSeq: 0) { seq stream line at } }",
    "subscription S($id: ID!) { logs: jobLogs(jobId: $id, tail: 5000) { __typename when: at n: seq line again: line } }",
    "subscription($id: ID!) { jobLogBatches(jobId: $id, afterSeq: 0, maxLines: 4) "
    "{ lastSeq lines { line seq __typename stream at } } }",
]
# Not plain: these keep strawberry's per-event execution (and must still be right).
NOT_PLAIN = [
    "subscription($id: ID!) { jobLogs(jobId: $id, afterSeq: 0) { seq ... on LogLine { line } } }",
    "subscription($id: ID!) { jobLogs(jobId: $id, afterSeq: 0) { seq line @include(if: true) } }",
    "subscription($id: ID!) { jobLogs(jobId: $id, afterSeq: 0) { ...F } } fragment F on LogLine { seq line }",
]


async def raw_frames(api: str, query: str, job_gid: str) -> list[str]:
    """Every frame the server sent for one subscription, as text, until its `complete`."""
    url = api.replace("http://", "ws://") + "/graphql"
    async with websockets.connect(url, subprotocols=["graphql-transport-ws"]) as ws, asyncio.timeout(30):
        await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        await ws.send(json.dumps({"id": "s1", "type": "subscribe",
                                  "payload": {"query": query, "variables": {"id": job_gid}}}))  # fmt: skip
        frames = []
        while True:
            frame = await ws.recv()
            assert isinstance(frame, str)  # text frames, as graphql-ws clients require
            frames.append(frame)
            if json.loads(frame)["type"] in ("complete", "error"):
                return frames


@pytest.fixture
def direct_sends(monkeypatch) -> list[bool]:
    """What each DirectEvents.send answered (True: sent directly)."""
    from app.api.fanout import DirectEvents

    answers: list[bool] = []
    send = DirectEvents.send

    async def spy(self, value, position):
        answers.append(await send(self, value, position))
        return answers[-1]

    monkeypatch.setattr(DirectEvents, "send", spy)
    return answers


def strawberry_only(monkeypatch) -> None:
    """The resolvers' view of the fan-out without direct events: every event through strawberry."""
    from app.api.jobs import subscriptions

    monkeypatch.setattr(subscriptions, "direct_events", lambda info: None)


@pytest.mark.parametrize("query", DOCUMENTS)
async def test_direct_events_are_byte_identical_to_strawberrys(api: str, job, recorder, direct_sends,  # noqa: F811
                                                                monkeypatch, query: str) -> None:
    job_id, job_gid = job
    await recorder.job_logs(job_id, "stdout", LINES)
    await recorder.job_log(job_id, "stderr", "an error line")
    await finish(recorder, job_id)  # the streams send every line, then complete

    direct = await raw_frames(api, query, job_gid)
    messages = len(direct) - 1
    assert messages == (3 if "Batches" in query else len(LINES) + 1)
    assert direct_sends == [True] * messages  # each event was built here, none by strawberry
    assert json.loads(direct[-1]) == {"id": "s1", "type": "complete"}

    strawberry_only(monkeypatch)
    direct_sends.clear()
    through_strawberry = await raw_frames(api, query, job_gid)
    assert direct_sends == []
    assert through_strawberry == direct  # the same text, frame for frame

    sent = [json.loads(frame)["payload"]["data"] for frame in direct[:-1]]
    if "Batches" in query:
        lines = [x["line"] for batch in sent for x in batch["jobLogBatches"]["lines"]]
    else:
        lines = [next(iter(x.values()))["line"] for x in sent]
    assert lines == [*LINES, "an error line"]


@pytest.mark.parametrize("query", NOT_PLAIN)
async def test_selections_that_are_not_plain_keep_strawberrys_path(api: str, job, recorder, direct_sends,  # noqa: F811
                                                                   query: str) -> None:
    job_id, job_gid = job
    await recorder.job_logs(job_id, "stdout", ["one", "two"])
    await finish(recorder, job_id)
    frames = [json.loads(f) for f in await raw_frames(api, query, job_gid)]
    assert direct_sends == []
    assert [f["payload"]["data"]["jobLogs"] for f in frames[:-1]] == [{"seq": 1, "line": "one"},
                                                                      {"seq": 2, "line": "two"}]  # fmt: skip
    assert frames[-1]["type"] == "complete"


async def test_a_value_the_short_path_does_not_judge_goes_through_strawberry(api: str, job, recorder,  # noqa: F811
                                                                            direct_sends, monkeypatch) -> None:
    """A null where the schema promises a value: strawberry reports it as it always did."""
    from app.api.jobs.types import LogLine

    job_id, job_gid = job
    await recorder.job_logs(job_id, "stdout", ["fine", "broken", "fine again"])
    await finish(recorder, job_id)
    from_model = LogLine.from_model.__func__  # type: ignore[attr-defined]

    def with_a_null(cls, row):
        line = from_model(cls, row)
        if line.line == "broken":
            line.line = None
        return line

    monkeypatch.setattr(LogLine, "from_model", classmethod(with_a_null))
    frames = [json.loads(f) for f in await raw_frames(api, DOCUMENTS[0], job_gid)]
    assert direct_sends == [True, False, True]
    assert frames[0]["payload"]["data"]["jobLogs"]["line"] == "fine"
    assert frames[1]["payload"]["data"] is None and frames[1]["payload"]["errors"]  # strawberry's answer
    assert frames[-1]["type"] == "complete"


def test_an_extension_acting_on_each_event_keeps_strawberrys_path() -> None:
    """Tracing (a `resolve` hook), result extensions or a stream hook need strawberry per event;
    masking errors does not (a direct event has none)."""
    from strawberry.extensions import SchemaExtension
    from strawberry.extensions.tracing import OpenTelemetryExtension

    from app.api.extensions import TracedErrors
    from app.api.fanout import _per_event_hooks

    class Results(SchemaExtension):
        def get_results(self):
            return {"cost": 1}

    class OnEachResult(SchemaExtension):
        def on_stream_result(self, result):
            yield

    assert _per_event_hooks(OpenTelemetryExtension(execution_context=None))
    assert _per_event_hooks(Results()) and _per_event_hooks(OnEachResult())
    assert not _per_event_hooks(TracedErrors()) and not _per_event_hooks(SchemaExtension())

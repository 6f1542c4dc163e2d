"""The agent guide is proven by running it: every GraphQL document in `/agent-guide.md` is
executed in order against the running platform as one agent session (an API key, a repository,
and the credit a human would have deposited), subscriptions over graphql-transport-ws; the
Python websocket client it shows is run too. `/llms.txt` and `/schema.graphql` are served."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
from graphql import OperationDefinitionNode, OperationType, parse

from app.schema import schema
from tests.experiments import make_demo_repo
from tests.test_money_support import give_credit
from tests.ws import WsClient

ROOT = Path(__file__).resolve().parent.parent
FENCE = re.compile(r"^```(\w+)\n(.*?)^```", re.S | re.M)
PLACEHOLDER = re.compile(r"^<([\w.]+)>$")


def documents(guide: str) -> list[tuple[str, str]]:
    """(language, body) of every fenced block, in order."""
    return [(m.group(1), m.group(2)) for m in FENCE.finditer(guide)]


def operations(blocks: list[tuple[str, str]]) -> list[tuple[str, dict[str, Any]]]:
    """Each GraphQL document with the JSON variables block that follows it (if any)."""
    out = []
    for i, (lang, body) in enumerate(blocks):
        if lang == "graphql":
            follows = blocks[i + 1] if i + 1 < len(blocks) else ("", "")
            out.append((body, json.loads(follows[1]) if follows[0] == "json" else {}))
    return out


def resolve(value: Any, answers: dict[str, Any], external: dict[str, Any]) -> Any:
    """Fill `"<createRun.run.id>"`-style placeholders from earlier answers (or the setup)."""
    if isinstance(value, dict):
        return {k: resolve(v, answers, external) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, answers, external) for v in value]
    if isinstance(value, str) and (m := PLACEHOLDER.match(value)):
        path = m.group(1)
        if path in external:
            return external[path]
        node: Any = answers
        for part in path.split("."):
            node = node[int(part)] if isinstance(node, list) else node[part]
        return node
    return value


IN_PROGRESS = {"DRYRUN", "FUNDED"}


async def subscribe(api: str, api_key: str, document: str, variables: dict[str, Any]) -> list[dict[str, Any]]:
    """Every event until the stream ends, or, for `runUpdates` (which does not end), until the run
    leaves the phase in progress: the rule the guide gives."""
    ws = await WsClient.connect(api, {"authorization": f"Bearer {api_key}"})
    events: list[dict[str, Any]] = []
    try:
        async with asyncio.timeout(120):
            async for event in ws.subscribe(document, variables):
                events.append(event)
                if "runUpdates" in event and event["runUpdates"]["run"]["status"] not in IN_PROGRESS:
                    break
    finally:
        await ws.close()
    return events


async def test_served_documents(api: str) -> None:
    async with httpx.AsyncClient(base_url=api) as http:
        llms, guide, sdl = (await http.get("/llms.txt"), await http.get("/agent-guide.md"),
                            await http.get("/schema.graphql"))
    assert llms.status_code == guide.status_code == sdl.status_code == 200
    assert llms.headers["content-type"].startswith("text/plain")
    assert f"{api}/agent-guide.md" in llms.text and f"{api}/schema.graphql" in llms.text
    assert api.replace("http://", "ws://") + "/graphql" in llms.text and "{{" not in llms.text
    assert guide.headers["content-type"].startswith("text/markdown")
    assert "<!-- generated" not in guide.text and "{{" not in guide.text
    assert "`createRun(input: CreateRunInput!): CreateRunPayload!`" in guide.text  # the generated reference
    assert sdl.text == schema.as_str()
    index = (ROOT / "frontend" / "index.html").read_text()  # the SPA at / links both
    assert 'href="/llms.txt"' in index and 'href="/agent-guide.md"' in index


async def test_every_document_runs_as_one_agent_session(api: str, make_person, work_dir: Path) -> None:
    async with httpx.AsyncClient(base_url=api) as http:
        guide = (await http.get("/agent-guide.md")).text
    blocks = documents(guide)
    ops = operations(blocks)
    assert len(ops) >= 20, len(ops)

    agent = await make_person("guide-agent")
    repo = make_demo_repo(work_dir)
    await give_credit(agent.user_id, 10_000)  # the human's deposit ("Settings → Wallet")
    external = {"repoUrl": str(repo.path)}
    answers: dict[str, Any] = {}
    for document, variables in ops:
        [operation] = [d for d in parse(document).definitions if isinstance(d, OperationDefinitionNode)]
        filled = resolve(variables, answers, external)
        if operation.operation is OperationType.SUBSCRIPTION:
            events = await subscribe(api, agent.api_key, document, filled)
            assert events, f"{operation.name.value}: the stream ended without an event"
            answers |= events[-1]
            continue
        body = await agent.agent.execute(document, filled)
        assert not body.get("errors"), (operation.name.value, body)
        typed_errors = [v for v in body["data"].values() if isinstance(v, dict) and "code" in v]
        assert not typed_errors, (operation.name.value, typed_errors)
        answers |= body["data"]

    # The session went the whole way: the run was funded once, ran, and settled.
    assert answers["fundRun"]["replayed"] is True
    assert answers["run"]["status"] == "COMPLETED" and answers["run"]["fundedJob"]["status"] == "SUCCEEDED"
    assert answers["copyRun"]["run"]["copiedFrom"]["id"] == answers["createRun"]["run"]["id"]

    # The Python websocket client of "Live streams" prints the dryrun's log lines.
    [client] = [body for lang, body in blocks if lang == "python"]
    env = {**os.environ, "MLPATRON_URL": api, "MLPATRON_API_KEY": agent.api_key,
           "JOB_ID": answers["createRun"]["run"]["dryrunJob"]["id"], "AFTER_SEQ": "0"}
    done = await asyncio.to_thread(subprocess.run, [sys.executable, "-c", client], env=env, capture_output=True,
                                   text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "epoch 0 loss" in done.stdout, done.stdout

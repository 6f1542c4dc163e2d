"""parseMlproject's dryrun suggestion is always one createRun accepts as it is: a property over
generated MLprojects (hypothesis), plus the API round trip on a project that used to get a
suggestion createRun refused."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from app.core.errors import ValidationError
from app.execution import mlproject
from app.runs.services import check_dryrun_override
from tests.experiments import CREATE_RUN, make_project
from tests.repos import Repo, git

CANDIDATES = ["epochs", "num_epochs", "n_epochs", "max_epochs", "num_train_epochs", "num_iterations", "max_steps",
              "steps", "num_steps", "train_steps", "max_iters", "iterations", "n_iter", "max_iter"]
NAMES = st.sampled_from(CANDIDATES) | st.from_regex(r"[a-z][a-z_]{0,10}", fullmatch=True)

DEFAULTS = {
    "int": st.none() | st.integers(-10, 10**9),
    "float": st.none() | st.floats(-1e6, 1e12, allow_nan=False, allow_infinity=False)
    | st.sampled_from(["1e-3", "0.5", "2.", ".25", "-1", "0"]),
    "string": st.none() | st.sampled_from(["3", "ten", "", "0"]),
    "path": st.none() | st.just("data/train"),
    "uri": st.none() | st.just("s3://bucket/key"),
}


@st.composite
def parameter(draw) -> tuple[str, object]:
    ptype = draw(st.sampled_from(mlproject.PARAM_TYPES))
    default = draw(DEFAULTS[ptype])
    if default is None and draw(st.booleans()):
        return ptype, ptype  # the bare form: `epochs: int`
    return ptype, {"type": ptype} if default is None else {"type": ptype, "default": default}


@st.composite
def mlproject_text(draw) -> str:
    entry_points = {}
    for ep in draw(st.lists(st.sampled_from(["main", "train", "eval"]), min_size=1, max_size=3, unique=True)):
        params = {name: draw(parameter())[1] for name in draw(st.lists(NAMES, max_size=6, unique=True))}
        command = "python train.py " + " ".join(f"--{n} {{{n}}}" for n in params)
        entry_points[ep] = {"parameters": params, "command": command}
    return yaml.safe_dump({"name": "generated", "entry_points": entry_points})


def required_values(entry: mlproject.EntryPoint) -> dict[str, object]:
    """What a researcher fills in for parameters without a default."""
    sample = {"int": 7, "float": 2.5, "string": "x", "path": "data", "uri": "s3://b/k"}
    return {p.name: sample[p.type] for p in entry.parameters if p.required}


def accepted(entry: mlproject.EntryPoint, param: str, value: object) -> bool:
    effective = mlproject.validate_parameters(entry, required_values(entry))
    try:
        check_dryrun_override(entry, effective, param, value)
    except ValidationError:
        return False
    return True


@settings(max_examples=400, deadline=None, derandomize=True, database=None)
@given(mlproject_text())
def test_every_suggestion_is_accepted_and_none_is_missed(text: str) -> None:
    for entry in mlproject.parse_mlproject(text).entry_points.values():
        suggestion = mlproject.dryrun_suggestion(entry)
        if suggestion is not None:
            param, value = suggestion
            # As parseMlproject answers it (a string) and as a number: both are accepted.
            assert accepted(entry, param, str(value)) and accepted(entry, param, value), (text, suggestion)
            default = entry.parameter(param).default
            assert default is None or float(value) <= float(default)  # never longer than the run's default
        else:
            usable = [p.name for p in entry.parameters if p.name in CANDIDATES and accepted(entry, p.name, 1e-9)]
            assert usable == [], (text, usable)


TRICKY = """name: tricky
entry_points:
  main:
    parameters:
      epochs: {type: string, default: "3"}
      max_steps: {type: int, default: -1}
      steps: {type: int, default: 5}
    command: "python train.py {epochs} {max_steps} {steps}"
"""

PARSE = """query($u: String!) { parseMlproject(uri: $u, version: "main") {
  ... on ParsedMLproject { entryPoints { name dryrunSuggestion { param value } } } } }"""


async def test_parse_then_create_with_the_suggestion(make_person, work_dir: Path) -> None:
    """`epochs` is a string here and `max_steps: -1` cannot be scaled: `steps` is suggested, at its default."""
    path = work_dir / f"tricky-{uuid.uuid4().hex[:6]}"
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    repo = Repo(path)
    repo.commit({"MLproject": TRICKY, "train.py": "print('ok')\n"})
    researcher = await make_person("suggested")
    [main] = (await researcher.agent.data(PARSE, {"u": str(path)}))["parseMlproject"]["entryPoints"]
    assert main["dryrunSuggestion"] == {"param": "steps", "value": "5"}
    project = await make_project(researcher.agent, repo)
    created = (await researcher.agent.data(CREATE_RUN, {"i": {
        "projectId": project, "title": "as suggested", "uri": str(path), "version": "main",
        "resources": {"gpuType": "l4"}, "dryrunOverrideParam": main["dryrunSuggestion"]["param"],
        "dryrunOverrideValue": main["dryrunSuggestion"]["value"]}}))["createRun"]
    assert created["__typename"] == "RunSuccess", created


@pytest.mark.parametrize(("declared", "expected"), [
    ("epochs: {type: int, default: 20}", ("epochs", 1)),
    ("max_iters: {type: int, default: 4}", ("max_iters", 4)),
    ("num_train_epochs: {type: float, default: 0.5}", ("num_train_epochs", 0.5)),
    ("steps: float", ("steps", 10)),
    ("epochs: {type: path, default: x}", None),
    ("lr: {type: float, default: 0.1}", None),
])
def test_examples(declared: str, expected) -> None:
    text = f"entry_points:\n  main:\n    parameters:\n      {declared}\n    command: python x.py\n"
    assert mlproject.dryrun_suggestion(mlproject.parse_mlproject(text).entry_point("main")) == expected

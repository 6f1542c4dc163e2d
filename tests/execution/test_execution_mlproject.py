from __future__ import annotations

import shlex

import pytest
from mlflow.projects._project_spec import EntryPoint as MlflowEntryPoint

from app.execution.mlproject import (
    EntryPoint,
    MLProjectError,
    Parameter,
    dryrun_suggestion,
    load_mlproject,
    normalize_parameter,
    parse_mlproject,
    render_command,
    validate_parameters,
)

EXAMPLE = """
name: demo
docker_env:
  image: ghcr.io/mlpatron/demo:1.0
entry_points:
  main:
    parameters:
      epochs: {type: int, default: 10}
      lr: {type: float, default: 0.01}
      data: path
      tag: string
      run_name: {default: baseline}
    command: "python train.py --epochs {epochs} --lr {lr} --data {data} --tag {tag} --name {run_name}"
  eval:
    parameters:
      max_steps: {type: int, default: 500}
      checkpoint: {type: uri}
    command: "python eval.py {checkpoint} --steps={max_steps} --literal {{braces}}"
  plain:
    command: python plain.py
"""


def _ep(params: dict[str, object] | None = None, command: str = "run") -> EntryPoint:
    parsed = [Parameter(n, str(t), None, True) for n, t in (params or {}).items()]
    return EntryPoint("main", parsed, command)


def test_parse_example() -> None:
    project = parse_mlproject(EXAMPLE)
    assert project.name == "demo"
    assert project.image == "ghcr.io/mlpatron/demo:1.0"
    assert list(project.entry_points) == ["main", "eval", "plain"]
    main = project.entry_point("main")
    assert main.parameters == [
        Parameter("epochs", "int", "10", False),
        Parameter("lr", "float", "0.01", False),
        Parameter("data", "path", None, True),  # bare type string: required
        Parameter("tag", "string", None, True),
        Parameter("run_name", "string", "baseline", False),  # type defaults to string
    ]
    assert project.entry_point("eval").parameter("checkpoint") == Parameter("checkpoint", "uri", None, True)
    assert project.entry_point("plain").parameters == []


def test_python_env_project_has_no_image() -> None:
    project = parse_mlproject("python_env: python_env.yaml\nentry_points:\n  main:\n    command: python x.py\n")
    assert project.image is None
    assert project.python_env == "python_env.yaml"
    assert project.name is None


@pytest.mark.parametrize(
    "text",
    [
        "entry_points: [unclosed",
        "just a string",
        "name: x\n",
        "entry_points: {}\n",
        "entry_points:\n  main:\n    parameters: {}\n",
        "entry_points:\n  main:\n    command: x {a}\n",  # placeholder without a parameter
        "entry_points:\n  main:\n    parameters: {a: bool}\n    command: x {a}\n",
        "entry_points:\n  main:\n    parameters: {a: {type: int, default: ten}}\n    command: x {a}\n",
        "entry_points:\n  main:\n    parameters: {a: int}\n    command: x {a!r}\n",
        "entry_points:\n  main:\n    parameters: {a: int}\n    command: x {a.__class__}\n",
        "entry_points:\n  main:\n    command: x {\n",
        "docker_env: {}\nentry_points:\n  main:\n    command: x\n",
    ],
)
def test_invalid_mlproject(text: str) -> None:
    with pytest.raises(MLProjectError) as err:
        parse_mlproject(text)
    assert err.value.code == "MLPROJECT_INVALID"


def test_unknown_entry_point() -> None:
    with pytest.raises(MLProjectError) as err:
        parse_mlproject(EXAMPLE).entry_point("train")
    assert err.value.code == "UNKNOWN_ENTRY_POINT"
    assert "eval, main, plain" in err.value.message


async def test_load_from_git(make_repo) -> None:
    repo = make_repo(files={"mlproject": EXAMPLE})  # MLflow finds the file case-insensitively
    sha = repo.git("rev-parse", "HEAD")
    project = await load_mlproject(str(repo.path), sha)
    assert project.image == "ghcr.io/mlpatron/demo:1.0"

    bare = make_repo("bare", files={"train.py": "print(1)\n"})
    with pytest.raises(MLProjectError) as err:
        await load_mlproject(str(bare.path), bare.git("rev-parse", "HEAD"))
    assert err.value.code == "MLPROJECT_MISSING"


def test_validate_parameters_normalizes_and_fills_defaults() -> None:
    main = parse_mlproject(EXAMPLE).entry_point("main")
    got = validate_parameters(main, {"epochs": "3", "lr": "1e-3", "data": "data/train.csv", "tag": 7})
    assert got == {
        "epochs": "3",
        "lr": "1e-3",
        "data": "data/train.csv",
        "tag": "7",
        "run_name": "baseline",
    }
    assert validate_parameters(main, {"epochs": 5.0, "lr": 0.1, "data": "d", "tag": "t"})["lr"] == "0.1"


def test_validate_parameters_reports_every_bad_field() -> None:
    main = parse_mlproject(EXAMPLE).entry_point("main")
    with pytest.raises(MLProjectError) as err:
        validate_parameters(main, {"epochs": True, "lr": "fast", "tag": None, "typo": 1})
    assert err.value.code == "INVALID_PARAMETERS"
    assert err.value.fields is not None
    assert set(err.value.fields) == {"epochs", "lr", "tag", "typo", "data"}
    assert err.value.fields["data"] == "required"
    assert "unknown parameter" in err.value.fields["typo"]
    assert "integer" in err.value.fields["epochs"]  # bool is not an int

    for bad in ({"epochs": 2.5}, {"epochs": "1.0"}, {"epochs": "nan"}):
        with pytest.raises(MLProjectError) as err:
            validate_parameters(main, {"data": "d", "tag": "t", **bad})
        assert set(err.value.fields or {}) == {"epochs"}
    evaluate = parse_mlproject(EXAMPLE).entry_point("eval")
    with pytest.raises(MLProjectError) as err:
        validate_parameters(evaluate, {"checkpoint": "no-scheme"})
    assert set(err.value.fields or {}) == {"checkpoint"}
    assert validate_parameters(evaluate, {"checkpoint": "s3://b/k"})["checkpoint"] == "s3://b/k"

    steps = evaluate.parameter("max_steps")
    assert steps is not None and normalize_parameter(steps, 10.0) == "10"  # one value, other fields ignored
    with pytest.raises(MLProjectError) as err:
        normalize_parameter(steps, "ten")
    assert err.value.fields == {"max_steps": "int: expected an integer"}


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        (["lr", "epochs", "steps"], ("epochs", 1)),
        (["num_epochs"], ("num_epochs", 1)),
        (["steps", "num_iterations"], ("num_iterations", 10)),
        (["iterations", "max_steps"], ("max_steps", 10)),
        (["iterations"], ("iterations", 10)),
        (["lr"], None),
        ([], None),
    ],
)
def test_dryrun_suggestion(names: list[str], expected: tuple[str, int] | None) -> None:
    assert dryrun_suggestion(_ep(dict.fromkeys(names, "int"))) == expected


NASTY = ["two words", "it's \"quoted\"", "a; rm -rf /", "$(touch pwned)", "`id`", "$HOME", "--flag", "", "x\ny"]


def test_render_quotes_every_value_like_mlflow() -> None:
    text = "entry_points:\n  main:\n    parameters: {a: string, b: {type: float, default: 0.5}}\n"
    text += "    command: python t.py --a {a} --b={b}\n"
    ep = parse_mlproject(text).entry_point("main")
    for value in NASTY:
        params = {"a": value, "extra one": value}  # undeclared names are appended, as MLflow does
        mine = render_command(ep, params)
        theirs = MlflowEntryPoint("main", {"a": "string", "b": {"type": "float", "default": 0.5}}, ep.command)
        assert mine == theirs.compute_command(params, None)
        assert shlex.split(mine) == ["python", "t.py", "--a", value, "--b=0.5", "--extra one", value]


def test_render_literal_braces_and_missing_value() -> None:
    ep = parse_mlproject(EXAMPLE).entry_point("eval")
    assert render_command(ep, {"checkpoint": "s3://b/k"}) == "python eval.py s3://b/k --steps=500 --literal {braces}"
    with pytest.raises(MLProjectError) as err:
        render_command(ep, {})
    assert err.value.code == "INVALID_PARAMETERS"

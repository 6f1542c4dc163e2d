"""MLproject files: parse, validate run parameters, render the job command.

Semantics follow MLflow Projects (typed parameters with defaults, `{param}` command
templates, shell-quoted values, extra parameters appended as `--name value`), but the
template is rendered by hand instead of `str.format` so a value can never be interpreted
by the format machinery or by the shell.
"""

from __future__ import annotations

import math
import re
import shlex
import string
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import yaml

from app.core import limits
from app.execution import git

PARAM_TYPES = ("int", "float", "string", "path", "uri")
# Parameters a dryrun can shorten, in order of preference: a dryrun runs 1 epoch or 10 steps.
_EPOCH_LIKE = ("epochs", "num_epochs", "n_epochs", "max_epochs", "num_train_epochs")
_STEP_LIKE = ("num_iterations", "max_steps", "steps", "num_steps", "train_steps", "max_iters", "iterations",
              "n_iter", "max_iter")
_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")
_INT_RE = re.compile(r"^[+-]?\d+$")
_FLOAT_RE = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


class MLProjectError(Exception):
    """code: MLPROJECT_MISSING | MLPROJECT_INVALID | UNKNOWN_ENTRY_POINT | INVALID_PARAMETERS."""

    def __init__(self, code: str, message: str, fields: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.fields = fields


@dataclass(frozen=True)
class Parameter:
    name: str
    type: str
    default: str | None  # as it will be passed to the command
    required: bool


@dataclass(frozen=True)
class EntryPoint:
    name: str
    parameters: list[Parameter]
    command: str

    def parameter(self, name: str) -> Parameter | None:
        return next((p for p in self.parameters if p.name == name), None)


@dataclass(frozen=True)
class MLProject:
    name: str | None
    image: str | None  # docker_env.image: what the Kubernetes executor runs
    entry_points: dict[str, EntryPoint]
    python_env: str | None = None  # recorded only; the local executor uses the platform's python

    def entry_point(self, name: str) -> EntryPoint:
        try:
            return self.entry_points[name]
        except KeyError:
            known = ", ".join(sorted(self.entry_points)) or "none"
            raise MLProjectError(
                "UNKNOWN_ENTRY_POINT", f"entry point {name!r} is not in MLproject (known: {known})"
            ) from None


# --------------------------------------------------------------------------- parsing


def _invalid(message: str) -> MLProjectError:
    return MLProjectError("MLPROJECT_INVALID", f"invalid MLproject: {message}")


def _template_fields(command: str) -> list[tuple[str, str | None]]:
    """(literal text, placeholder or None) pieces; `{{`/`}}` are literal braces as in str.format."""
    try:
        pieces = list(string.Formatter().parse(command))
    except ValueError as exc:
        raise _invalid(f"command template: {exc}") from None
    out: list[tuple[str, str | None]] = []
    for literal, field, spec, conversion in pieces:
        if field is not None and (spec or conversion or not _NAME_RE.match(field)):
            raise _invalid(f"command placeholder {{{field}}} must be a plain {{parameter}} name")
        out.append((literal, field))
    return out


def _parse_parameter(ep: str, name: Any, raw: Any) -> Parameter:
    where = f"entry point {ep!r} parameter {name!r}"
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise _invalid(f"{where}: names must be letters, digits, '_' or '-'")
    if isinstance(raw, str):  # bare type string: `alpha: float`
        ptype, default = raw, None
    elif isinstance(raw, dict):
        ptype, default = raw.get("type", "string"), raw.get("default")
    else:
        raise _invalid(f"{where}: expected a type name or a mapping with type/default")
    if ptype not in PARAM_TYPES:
        raise _invalid(f"{where}: type {ptype!r} is not one of {', '.join(PARAM_TYPES)}")
    if default is not None:
        try:
            default = _normalize(ptype, default)
        except ValueError as exc:
            raise _invalid(f"{where}: default {default!r}: {exc}") from None
    return Parameter(name=name, type=ptype, default=default, required=default is None)


def parse_mlproject(text: str) -> MLProject:
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise _invalid(f"not valid YAML: {exc}") from None
    if not isinstance(doc, dict):
        raise _invalid("the top level must be a mapping")

    name = doc.get("name")
    python_env = doc.get("python_env")
    raw_eps = doc.get("entry_points")
    if not isinstance(raw_eps, dict) or not raw_eps:
        raise _invalid("entry_points must be a non-empty mapping")
    return MLProject(
        name=str(name) if name is not None else None,
        image=_docker_image(doc.get("docker_env")),
        entry_points={str(ep_name): _parse_entry_point(str(ep_name), raw) for ep_name, raw in raw_eps.items()},
        python_env=str(python_env) if python_env is not None else None,
    )


def _docker_image(docker: Any) -> str | None:
    if docker is None:
        return None
    if not isinstance(docker, dict) or not isinstance(docker.get("image"), str) or not docker["image"]:
        raise _invalid("docker_env must be a mapping with an image")
    return docker["image"]


def _parse_entry_point(name: str, raw: Any) -> EntryPoint:
    if not isinstance(raw, dict) or not isinstance(raw.get("command"), str) or not raw["command"].strip():
        raise _invalid(f"entry point {name!r} needs a command")
    raw_params = raw.get("parameters") or {}
    if not isinstance(raw_params, dict):
        raise _invalid(f"entry point {name!r}: parameters must be a mapping")
    params = [_parse_parameter(name, k, v) for k, v in raw_params.items()]
    declared = {p.name for p in params}
    for _, field in _template_fields(raw["command"]):
        if field is not None and field not in declared:
            raise _invalid(f"entry point {name!r}: command uses undeclared parameter {{{field}}}")
    return EntryPoint(name=name, parameters=params, command=raw["command"])


async def load_mlproject(url: str, commit_sha: str) -> MLProject:
    """Read and parse the MLproject at the commit (file name matched case-insensitively, like MLflow)."""
    names = [n for n in await git.list_root(url, commit_sha) if n.lower() == "mlproject"]
    text = await git.read_file_at(url, commit_sha, names[0]) if names else None
    if text is None:
        raise MLProjectError("MLPROJECT_MISSING", f"no MLproject file at the root of {url}@{commit_sha[:12]}")
    return parse_mlproject(text)


# --------------------------------------------------------------------------- parameters


def _check_magnitude(value: Any) -> None:
    """Numbers the estimate can scale by: finite and at most `limits.PARAM_MAGNITUDE` in size."""
    try:
        number = float(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError, OverflowError):
        return  # not a number: the type check below says so
    if not (math.isfinite(number) and abs(number) <= limits.PARAM_MAGNITUDE):
        raise ValueError(f"must be a finite number of magnitude at most {limits.PARAM_MAGNITUDE:.0e}")


def _normalize(ptype: str, value: Any) -> str:
    """The string passed to the command; ValueError with a field message when it does not fit."""
    if value is None:
        raise ValueError("must not be null")
    if isinstance(value, bool):  # bool is an int subclass, and str(True) helps nobody
        expected = {"int": "an integer", "float": "a number"}.get(ptype, "a string")
        raise ValueError(f"expected {expected}, not a boolean")
    if ptype == "int":
        _check_magnitude(value)
        return _normalize_int(value)
    if ptype == "float":
        _check_magnitude(value)
        return _normalize_float(value)
    return _normalize_text(ptype, value)


def _normalize_int(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str) and _INT_RE.match(value.strip()):
        return str(int(value.strip()))
    raise ValueError("expected an integer")


def _normalize_float(value: Any) -> str:
    if isinstance(value, int | float) and math.isfinite(value):
        return repr(float(value)) if isinstance(value, float) else str(value)
    if isinstance(value, str) and _FLOAT_RE.match(value.strip()):
        return value.strip()  # the caller's spelling, e.g. "1e-3", reaches the script as written
    raise ValueError("expected a number")


def _normalize_text(ptype: str, value: Any) -> str:
    if isinstance(value, int | float):
        value = str(value)
    if not isinstance(value, str):
        raise ValueError("expected a string")
    if "\0" in value:
        raise ValueError("must not contain NUL characters")
    if ptype == "uri" and not urlsplit(value).scheme:
        raise ValueError("expected a URI with a scheme (e.g. s3://bucket/key)")
    return value


def normalize_parameter(parameter: Parameter, value: Any) -> str:
    """One value checked against its declared type (e.g. a dryrun override value)."""
    try:
        return _normalize(parameter.type, value)
    except ValueError as exc:
        msg = f"{parameter.type}: {exc}"
        raise MLProjectError("INVALID_PARAMETERS", f"invalid {parameter.name}: {msg}", {parameter.name: msg}) from None


def validate_parameters(entry_point: EntryPoint, params: dict[str, Any]) -> dict[str, str]:
    """Effective parameters (given values plus defaults) as strings, or INVALID_PARAMETERS."""
    fields: dict[str, str] = {}
    for name in params:
        if entry_point.parameter(name) is None:
            fields[name] = f"unknown parameter for entry point {entry_point.name!r}"
    out: dict[str, str] = {}
    for p in entry_point.parameters:
        if p.name not in params:
            if p.default is None:
                fields[p.name] = "required"
            else:
                out[p.name] = p.default
            continue
        try:
            out[p.name] = normalize_parameter(p, params[p.name])
        except MLProjectError as exc:
            fields |= exc.fields or {}
    if fields:
        raise MLProjectError("INVALID_PARAMETERS", "invalid parameters: " + ", ".join(sorted(fields)), fields)
    return out


def dryrun_suggestion(entry_point: EntryPoint) -> tuple[str, int | float] | None:
    """Which parameter a dryrun shortens, and to what: 1 epoch, or 10 steps/iterations.

    Only a suggestion createRun accepts as it is: a numeric (int or float) parameter whose
    default, when it has one, is positive (the estimate scales by default / dryrun value; a
    `max_steps: -1` meaning "unlimited" cannot be scaled), never more than that default."""
    for name in _EPOCH_LIKE + _STEP_LIKE:
        p = entry_point.parameter(name)
        if p is None or p.type not in ("int", "float"):
            continue
        short = 1 if name in _EPOCH_LIKE else 10
        if p.default is None:
            return name, short
        full = float(p.default)
        if full > 0:
            return name, min(short, int(full) if p.type == "int" else full)
    return None


def render_command(entry_point: EntryPoint, params: dict[str, Any]) -> str:
    """The shell command for the job, every value shell-quoted.

    Declared parameters fill the `{name}` placeholders (given value, else default); names the
    entry point does not declare are appended as `--name value`, exactly as MLflow does.
    Pass the output of validate_parameters to get typed, checked values.
    """
    values: dict[str, str] = {}
    for p in entry_point.parameters:
        value = params.get(p.name, p.default)
        if value is None:
            raise MLProjectError("INVALID_PARAMETERS", f"missing parameter {p.name}", {p.name: "required"})
        values[p.name] = str(value)
    out = []
    for literal, field in _template_fields(entry_point.command):
        out.append(literal)
        if field is not None:
            out.append(shlex.quote(values[field]))
    extras = [f"--{shlex.quote(k)} {shlex.quote(str(v))}" for k, v in params.items() if k not in values]
    return " ".join(["".join(out), *extras])

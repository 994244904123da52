"""Tools: a decorator that turns a typed, documented function into a tool definition, and a registry.

    @tool(context="workspace")
    def read_file(workspace: Workspace, filepath: str) -> str:
        '''Read a UTF-8 text file of the project.

        Args:
            filepath: The file's path, relative to the project directory.
        '''

The definition carries the name, the description (the docstring's first paragraph) and a JSON schema
of the parameters built from the signature: type hints give the types, defaults make a parameter
optional, the docstring's `Args:` section describes each one. The `context` parameter is not part of
the schema: the agent passes it when it runs the tool (the run's workspace).

A registry presents its tools to a model in OpenAI's `tools` shape and runs the calls the model makes:
arguments are parsed and validated against the schema before the function runs, and every problem
(unknown tool, arguments that are not JSON or do not fit the schema, a refusal by the tool) comes back
as a result the model reads, so it can correct itself on its next turn.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import re
import types
import typing
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson
from jsonschema import Draft202012Validator

log = logging.getLogger(__name__)

_SCALARS: dict[Any, str] = {str: "string", int: "integer", float: "number", bool: "boolean"}
_ARGS_SECTION = re.compile(r"^\s*(Args|Arguments|Parameters):\s*$")
_ARG_LINE = re.compile(r"^(\s*)(\*{0,2}\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$")
_SPHINX_PARAM = re.compile(r"^\s*:param\s+(?:\w+\s+)?(\w+)\s*:\s*(.*)$")
NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$")


class ToolError(Exception):
    """A refusal or failure the model should read (a missing file, a path outside the project, ...)."""


def json_schema(annotation: Any, where: str) -> dict[str, Any]:
    """The JSON schema of a type hint: str, int, float, bool, list[T], dict[str, T], Literal[...], T | None."""
    description = None
    if typing.get_origin(annotation) is typing.Annotated:
        annotation, *extras = typing.get_args(annotation)
        description = next((extra for extra in extras if isinstance(extra, str)), None)
    origin, arguments = typing.get_origin(annotation), typing.get_args(annotation)
    schema: dict[str, Any]
    if annotation in _SCALARS:
        schema = {"type": _SCALARS[annotation]}
    elif origin is Literal:
        kinds = {_SCALARS.get(type(value)) for value in arguments}
        if None in kinds or len(kinds) != 1:
            raise TypeError(f"{where}: Literal values must all be of one JSON type")
        schema = {"type": kinds.pop(), "enum": list(arguments)}
    elif origin is list or annotation is list:
        schema = {"type": "array"}
        if arguments:
            schema["items"] = json_schema(arguments[0], where)
    elif origin is dict or annotation is dict:
        schema = {"type": "object"}
        if arguments:
            schema["additionalProperties"] = json_schema(arguments[1], where)
    elif origin in (typing.Union, types.UnionType) and type(None) in arguments and len(arguments) == 2:
        schema = json_schema(next(a for a in arguments if a is not type(None)), where)
    else:
        raise TypeError(f"{where}: no JSON schema for the type {annotation!r}")
    if description:
        schema["description"] = description
    return schema


def parse_docstring(doc: str | None) -> tuple[str, dict[str, str]]:
    """The description (the first paragraph) and each parameter's text from `Args:` or `:param x:` lines."""
    lines = inspect.cleandoc(doc or "").splitlines()
    summary: list[str] = []
    for line in lines:
        if not line.strip() or _ARGS_SECTION.match(line) or _SPHINX_PARAM.match(line):
            break
        summary.append(line.strip())
    parameters: dict[str, str] = {}
    current: str | None = None
    indent = -1
    in_args = False
    for line in lines:
        if sphinx := _SPHINX_PARAM.match(line):
            current, parameters[sphinx.group(1)] = sphinx.group(1), sphinx.group(2).strip()
            continue
        if _ARGS_SECTION.match(line):
            in_args, current = True, None
            continue
        if not in_args:
            continue
        if line.strip() and not line.startswith(" "):
            in_args = False  # the next section (Returns:, Raises:, ...)
            continue
        match = _ARG_LINE.match(line)
        if match and (indent < 0 or len(match.group(1)) <= indent):
            indent = len(match.group(1))
            current = match.group(2).lstrip("*")
            parameters[current] = match.group(3).strip()
        elif current and line.strip():
            parameters[current] = f"{parameters[current]} {line.strip()}".strip()
    return " ".join(summary), parameters


@dataclass(frozen=True)
class ToolDefinition:
    """A tool a model can call: its name, description, parameter schema and the function behind it."""

    name: str
    description: str
    parameters: dict[str, Any]
    function: Callable[..., Any]
    context: str | None = None  # the parameter through which the run's context reaches the function
    _validator: Draft202012Validator = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        Draft202012Validator.check_schema(self.parameters)
        object.__setattr__(self, "_validator", Draft202012Validator(self.parameters))

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.function(*args, **kwargs)

    def openai(self) -> dict[str, Any]:
        """As a model sees it: one entry of OpenAI's `tools`."""
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": self.parameters},
        }

    def problems(self, arguments: Any) -> list[str]:
        """What is wrong with `arguments` for this tool's schema; empty when they fit."""
        found = []
        for error in sorted(self._validator.iter_errors(arguments), key=lambda e: list(e.absolute_path)):
            where = ".".join(str(part) for part in error.absolute_path)
            found.append(f"{where}: {error.message}" if where else error.message)
        return found


def tool(
    function: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    description: str | None = None,
    context: str | None = None,
) -> Any:
    """Build a ToolDefinition from a function's signature, type hints and docstring (see the module doc)."""

    def build(target: Callable[..., Any]) -> ToolDefinition:
        tool_name = name or target.__name__
        if not NAME.match(tool_name):
            raise ValueError(f"tool name {tool_name!r} must be letters, digits, _ or - (at most 64)")
        summary, documented = parse_docstring(target.__doc__)
        text = description or summary
        if not text:
            raise ValueError(f"tool {tool_name!r} needs a description (a docstring or description=...)")
        hints = typing.get_type_hints(target, include_extras=True)
        properties: dict[str, Any] = {}
        required: list[str] = []
        signature = inspect.signature(target)
        if context is not None and context not in signature.parameters:
            raise ValueError(f"tool {tool_name!r} has no parameter {context!r} for its context")
        for parameter in signature.parameters.values():
            if parameter.name == context:
                continue
            where = f"tool {tool_name!r}, parameter {parameter.name!r}"
            if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD, parameter.POSITIONAL_ONLY):
                raise TypeError(f"{where}: only named parameters can be tool parameters")
            if parameter.name not in hints:
                raise TypeError(f"{where} needs a type hint")
            schema = json_schema(hints[parameter.name], where)
            if parameter.name in documented and "description" not in schema:
                schema["description"] = documented[parameter.name]
            if parameter.default is parameter.empty:
                required.append(parameter.name)
            elif parameter.default is not None:
                schema["default"] = parameter.default
            properties[parameter.name] = schema
        parameters = {"type": "object", "properties": properties, "required": required, "additionalProperties": False}
        return ToolDefinition(tool_name, text, parameters, target, context)

    return build(function) if function is not None else build


@dataclass(frozen=True)
class ToolOutcome:
    """What a tool call gave the model: its result, or what went wrong and how to do better."""

    content: str
    status: str  # "ok" | "invalid" (arguments or tool name) | "refused" (the tool said no) | "failed"

    @property
    def ok(self) -> bool:
        return self.status == "ok"


class ToolRegistry:
    """Tools by name: what a model is offered, and the one way their calls are run."""

    def __init__(self, tools: Iterable[ToolDefinition] = ()) -> None:
        self._tools: dict[str, ToolDefinition] = {}
        for definition in tools:
            self.register(definition)

    def register(self, definition: ToolDefinition) -> ToolDefinition:
        if definition.name in self._tools:
            raise ValueError(f"a tool named {definition.name!r} is already registered")
        self._tools[definition.name] = definition
        return definition

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def __getitem__(self, name: str) -> ToolDefinition:
        return self._tools[name]

    @property
    def names(self) -> list[str]:
        return list(self._tools)

    def subset(self, names: Iterable[str]) -> ToolRegistry:
        return ToolRegistry(self._tools[name] for name in names)

    def openai(self) -> list[dict[str, Any]]:
        return [definition.openai() for definition in self._tools.values()]

    def check(self, name: str, arguments: str) -> tuple[ToolDefinition, dict[str, Any]] | ToolOutcome:
        """The tool and its parsed arguments, or the outcome telling the model what is wrong with the call."""
        definition = self._tools.get(name)
        if definition is None:
            available = ", ".join(self._tools) or "none"
            return ToolOutcome(f"Error: there is no tool named {name!r} here. Available tools: {available}.", "invalid")
        try:
            parsed = orjson.loads(arguments or "{}")
        except orjson.JSONDecodeError as problem:
            return ToolOutcome(
                f"Error: the arguments for {name} are not valid JSON ({problem}). Call {name} again with a JSON "
                "object of its parameters.",
                "invalid",
            )
        problems = definition.problems(parsed)
        if problems:
            return ToolOutcome(
                f"Error: invalid arguments for {name}: {'; '.join(problems)}. Call {name} again with arguments "
                f"that match its parameters: {orjson.dumps(definition.parameters).decode()}",
                "invalid",
            )
        return definition, parsed

    async def run(self, name: str, arguments: str, context: Any = None) -> ToolOutcome:
        """Validate, then run the tool (a plain function in a worker thread); never raises for the tool's sake."""
        checked = self.check(name, arguments)
        if isinstance(checked, ToolOutcome):
            return checked
        definition, parsed = checked
        if definition.context is not None:
            parsed[definition.context] = context
        try:
            if inspect.iscoroutinefunction(definition.function):
                result = await definition.function(**parsed)
            else:
                result = await asyncio.to_thread(definition.function, **parsed)
        except ToolError as refusal:
            return ToolOutcome(f"Error: {refusal}", "refused")
        except Exception as failure:
            log.exception("tool %s failed", name)
            return ToolOutcome(f"Error: {name} failed unexpectedly ({type(failure).__name__}).", "failed")
        return ToolOutcome(result if isinstance(result, str) else orjson.dumps(result).decode(), "ok")

"""Fragments inlined: an operation whose selections are only fields, as graphql-core collects them.

Planned execution and compiled reads (`app.api.plans`, `app.api.compiled`) walk selections of
fields. Clients write fragments (the SPA spreads `RunSummary` into every list of runs), so an
operation's fragments are inlined once per parsed document: a fragment on the object's own type or
on one of its interfaces is replaced by its fields, in place, and a response key selected twice keeps
its first place when both are the same argument-less leaf (what graphql-core's field collection
makes of them). Anything else — a directive, a fragment on a union or on another type, a key whose
selections graphql-core would merge — leaves the operation to graphql-core.
"""

from __future__ import annotations

from collections.abc import Mapping

from graphql import (
    FieldNode,
    FragmentSpreadNode,
    GraphQLObjectType,
    InlineFragmentNode,
    NamedTypeNode,
    OperationDefinitionNode,
    SelectionSetNode,
    get_named_type,
)
from graphql.execution.collect_fields import FragmentDetails

from app.api.node_cache import NodeCache

Fragments = Mapping[str, FragmentDetails]  # the executor's: each definition with its variables' signatures


class Unsupported(Exception):
    """A selection planned execution and compiled reads leave to graphql-core."""


def fields_of(node: FieldNode | OperationDefinitionNode) -> list[tuple[str, FieldNode]]:
    """(response key, field) of an inlined selection set: only fields without directives, each key once."""
    out: list[tuple[str, FieldNode]] = []
    for selection in node.selection_set.selections if node.selection_set else ():
        if not isinstance(selection, FieldNode) or selection.directives:
            raise Unsupported
        key = selection.alias.value if selection.alias else selection.name.value
        if any(k == key for k, _ in out):
            raise Unsupported  # the same key twice: graphql-core merges them
        out.append((key, selection))
    return out


_inlined: NodeCache[OperationDefinitionNode, OperationDefinitionNode | None] = NodeCache(512)


def inlined(operation: OperationDefinitionNode, root_type: GraphQLObjectType,
            fragments: Fragments) -> OperationDefinitionNode | None:
    """`operation` with its fragments inlined (itself when it has none), or None when that would
    need more than the rules above. Made once per parsed operation."""
    return _inlined.get(operation, lambda op: _inline_operation(op, root_type, fragments))


def _inline_operation(operation: OperationDefinitionNode, root_type: GraphQLObjectType,
                      fragments: Fragments) -> OperationDefinitionNode | None:
    if not _has_fragments(operation.selection_set):
        return operation
    try:
        selection_set = _inline(root_type, operation.selection_set, fragments)
    except Unsupported:
        return None
    return OperationDefinitionNode(
        operation=operation.operation, name=operation.name, variable_definitions=operation.variable_definitions,
        directives=operation.directives, selection_set=selection_set, loc=operation.loc)


def _has_fragments(selection_set: SelectionSetNode | None) -> bool:
    return selection_set is not None and any(
        not isinstance(s, FieldNode) or _has_fragments(s.selection_set) for s in selection_set.selections)


def _inline(type_: GraphQLObjectType, selection_set: SelectionSetNode, fragments: Fragments) -> SelectionSetNode:
    fields: dict[str, FieldNode] = {}
    for field in _collect(type_, selection_set, fragments, set()):
        key = field.alias.value if field.alias else field.name.value
        if key in fields:
            if not _same_leaf(fields[key], field):
                raise Unsupported  # graphql-core would merge their selections
            continue
        if field.selection_set is not None:
            definition = type_.fields.get(field.name.value)
            named = get_named_type(definition.type) if definition is not None else None
            if not isinstance(named, GraphQLObjectType):
                raise Unsupported  # an interface or union: its fragments choose by the runtime type
            field = FieldNode(alias=field.alias, name=field.name, arguments=field.arguments,
                              directives=field.directives, selection_set=_inline(named, field.selection_set, fragments),
                              loc=field.loc)
        fields[key] = field
    return SelectionSetNode(selections=tuple(fields.values()), loc=selection_set.loc)


def _collect(type_: GraphQLObjectType, selection_set: SelectionSetNode, fragments: Fragments,
             spread: set[str]) -> list[FieldNode]:
    """The fields selected on an object of `type_`, fragments opened in place (each named one once)."""
    out: list[FieldNode] = []
    for selection in selection_set.selections:
        if selection.directives:
            raise Unsupported
        if isinstance(selection, FieldNode):
            out.append(selection)
        elif isinstance(selection, InlineFragmentNode):
            if _applies(selection.type_condition, type_):
                out += _collect(type_, selection.selection_set, fragments, spread)
        elif isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            details = fragments.get(name)
            if details is None or details.variable_signatures or getattr(selection, "arguments", None):
                raise Unsupported  # a fragment with variables of its own (an experimental form)
            fragment = details.definition
            if name not in spread and _applies(fragment.type_condition, type_):
                spread.add(name)
                out += _collect(type_, fragment.selection_set, fragments, spread)
    return out


def _applies(condition: NamedTypeNode | None, type_: GraphQLObjectType) -> bool:
    if condition is None or condition.name.value == type_.name:
        return True
    if any(condition.name.value == interface.name for interface in type_.interfaces):
        return True
    raise Unsupported  # a union, or another type: the schema would have to say


def _same_leaf(first: FieldNode, second: FieldNode) -> bool:
    return (first.name.value == second.name.value and not first.arguments and not second.arguments
            and first.selection_set is None and second.selection_set is None)

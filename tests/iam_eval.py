"""A small IAM policy evaluator for tests, and a resolver for the intrinsics of synthesized templates.

``evaluate`` decides one request the way IAM does for a principal and a resource
in the same account unless told otherwise: an explicit ``Deny`` in any policy
wins; otherwise an ``Allow`` in an identity policy or in the resource policy
(for a principal it names) is needed. Across accounts both sides must allow.
Supported: ``Action``/``NotAction`` (case-insensitive), ``Resource``/``NotResource``
(case-sensitive, ARN segments matched separately), ``*`` and ``?`` wildcards, the
String, Arn, Numeric, Bool and Null condition operators with the ``ForAnyValue:``
and ``ForAllValues:`` prefixes and the ``IfExists`` suffix. Anything else — an
unknown operator, a policy variable, a ``Principal`` form it does not know — raises
:class:`UnsupportedPolicy`, so a test never passes because something was skipped.

``TemplateResolver`` turns the CloudFormation intrinsics of synthesized templates
into plain values: ``Ref`` of pseudo parameters (from each stack's environment)
and of resources, ``Fn::GetAtt`` of the resource types it knows (with stable,
realistic generated ids), ``Fn::Join``, ``Fn::Select``, ``Fn::Split``, ``Fn::Sub``,
``Fn::FindInMap`` and ``Fn::ImportValue`` (looked up in the exporting stack's
outputs). Anything it cannot resolve raises :class:`Unresolvable`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

ContextValue = str | bool | int | float | Sequence[str]


class Unresolvable(ValueError):
    """A template value the resolver cannot turn into a plain value."""


class UnsupportedPolicy(ValueError):
    """A policy element the evaluator does not implement (it refuses to guess)."""


# --------------------------------------------------------------------------- evaluation


class Decision(Enum):
    ALLOWED = "allowed"
    EXPLICIT_DENY = "explicitly denied"
    IMPLICIT_DENY = "implicitly denied"


@dataclass(frozen=True)
class Result:
    """The decision and the statements that led to it (their Sid, or their index)."""

    decision: Decision
    allowed_by: tuple[str, ...] = ()
    denied_by: tuple[str, ...] = ()

    @property
    def allowed(self) -> bool:
        return self.decision is Decision.ALLOWED

    def __bool__(self) -> bool:  # pragma: no cover - guard against `assert evaluate(...)` mistakes
        raise TypeError("use .allowed or .decision, not the truth value of a Result")


def evaluate(
    identity_policies: Iterable[Mapping[str, Any]],
    action: str,
    resource: str,
    context: Mapping[str, ContextValue] | None = None,
    *,
    resource_policy: Mapping[str, Any] | None = None,
    principal_arn: str | None = None,
    resource_account: str | None = None,
) -> Result:
    """Decide whether ``action`` on ``resource`` is allowed, given the request ``context``.

    ``identity_policies`` are policy documents (``{"Statement": [...]}``) of the caller.
    With a ``resource_policy``, ``principal_arn`` (the caller's role ARN) and
    ``resource_account`` are required: a resource-policy statement applies when its
    ``Principal`` names the caller, its account, or ``*``; for a caller in another
    account both the identity and the resource policy must allow.
    """
    context = dict(context or {})
    if not _is_action(action):
        raise UnsupportedPolicy(f"not an action name: {action!r}")
    allows: list[str] = []
    resource_allows: list[str] = []
    denies: list[str] = []
    for document in identity_policies:
        for name, statement in _statements(document):
            if "Principal" in statement or "NotPrincipal" in statement:
                raise UnsupportedPolicy(f"identity policy statement {name} has a Principal")
            if _applies(statement, action, resource, context):
                (denies if statement["Effect"] == "Deny" else allows).append(name)
    if resource_policy is not None:
        if principal_arn is None or resource_account is None:
            raise UnsupportedPolicy("a resource policy needs principal_arn and resource_account")
        for name, statement in _statements(resource_policy):
            if "NotPrincipal" in statement:
                raise UnsupportedPolicy(f"resource policy statement {name}: NotPrincipal is not supported")
            if "Principal" not in statement:
                raise UnsupportedPolicy(f"resource policy statement {name} has no Principal")
            same_account = _account_of(principal_arn) == resource_account
            names = _principal_match(statement["Principal"], principal_arn)
            if names is None or not _applies(statement, action, resource, context):
                continue
            if statement["Effect"] == "Deny":
                denies.append(f"resource:{name}")
            elif names == "principal" or not same_account:
                # In its own account, a grant to the account (root) only delegates to IAM policies.
                resource_allows.append(f"resource:{name}")
    if denies:
        return Result(Decision.EXPLICIT_DENY, tuple(allows + resource_allows), tuple(denies))
    same_account = resource_policy is None or _account_of(principal_arn or "") == resource_account
    allowed = (allows or resource_allows) if same_account else (allows and resource_allows)
    if allowed:
        return Result(Decision.ALLOWED, tuple(allows + resource_allows))
    return Result(Decision.IMPLICIT_DENY, tuple(allows + resource_allows))


def _statements(document: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    if not isinstance(document, Mapping) or "Statement" not in document:
        raise UnsupportedPolicy(f"not a policy document: {document!r}")
    statements = document["Statement"]
    if isinstance(statements, Mapping):
        statements = [statements]
    named = []
    for i, statement in enumerate(statements):
        if statement.get("Effect") not in ("Allow", "Deny"):
            raise UnsupportedPolicy(f"statement {i}: Effect must be Allow or Deny, got {statement.get('Effect')!r}")
        unknown = set(statement) - {
            "Sid",
            "Effect",
            "Action",
            "NotAction",
            "Resource",
            "NotResource",
            "Condition",
            "Principal",
            "NotPrincipal",
        }
        if unknown:
            raise UnsupportedPolicy(f"statement {i}: unknown elements {sorted(unknown)}")
        named.append((str(statement.get("Sid") or f"#{i}"), statement))
    return named


def _applies(statement: Mapping[str, Any], action: str, resource: str, context: Mapping[str, ContextValue]) -> bool:
    return (
        _matches_element(statement, "Action", action, _action_matches)
        and _matches_element(statement, "Resource", resource, resource_matches)
        and conditions_hold(statement.get("Condition", {}), context)
    )


def _matches_element(statement: Mapping[str, Any], element: str, value: str, match: Callable[[str, str], bool]) -> bool:
    positive, negative = statement.get(element), statement.get(f"Not{element}")
    if (positive is None) == (negative is None):
        raise UnsupportedPolicy(f"a statement needs exactly one of {element} and Not{element}: {statement!r}")
    patterns = _strings(positive if positive is not None else negative, element)
    hit = any(match(pattern, value) for pattern in patterns)
    return hit if positive is not None else not hit


def _strings(value: Any, what: str) -> list[str]:
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise UnsupportedPolicy(f"{what} must be a string or a list of strings (resolve intrinsics first): {value!r}")
    for v in values:
        if "${" in v:
            raise UnsupportedPolicy(f"policy variables are not supported: {v!r}")
    return values


def _is_action(name: str) -> bool:
    return bool(re.fullmatch(r"[a-z0-9-]+:[A-Za-z0-9*?]+", name))


def _action_matches(pattern: str, action: str) -> bool:
    if pattern != "*" and not re.fullmatch(r"[a-zA-Z0-9-]+:[A-Za-z0-9*?]+", pattern):
        raise UnsupportedPolicy(f"not an action pattern: {pattern!r}")
    return wildcard_match(pattern, action, ignore_case=True)


def wildcard_match(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    """IAM wildcard matching: ``*`` is any run of characters (also none), ``?`` exactly one."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, re.DOTALL | (re.IGNORECASE if ignore_case else 0)) is not None


def resource_matches(pattern: str, resource: str) -> bool:
    """``Resource`` matching: ``*`` alone matches everything; ARNs are matched segment by segment."""
    if pattern == "*":
        return True
    if not pattern.startswith("arn:"):
        raise UnsupportedPolicy(f"a Resource is '*' or an ARN pattern: {pattern!r}")
    return arn_matches(pattern, resource)


def arn_matches(pattern: str, arn: str) -> bool:
    """Each of the six colon-separated parts is matched on its own; the last keeps its colons."""
    pattern_parts, arn_parts = pattern.split(":", 5), arn.split(":", 5)
    if len(pattern_parts) != 6 or pattern_parts[0] != "arn":
        raise UnsupportedPolicy(f"not an ARN pattern (six colon-separated parts): {pattern!r}")
    if len(arn_parts) != 6:
        return False
    return all(wildcard_match(p, a) for p, a in zip(pattern_parts, arn_parts, strict=True))


def _principal_match(principal: Any, principal_arn: str) -> str | None:
    """``"principal"`` if the element names the caller (or everyone), ``"account"`` if its account, else None."""
    if principal == "*":
        return "principal"
    if not isinstance(principal, Mapping) or set(principal) - {"AWS", "Service", "Federated", "CanonicalUser"}:
        raise UnsupportedPolicy(f"unsupported Principal: {principal!r}")
    for kind, values in principal.items():
        for value in [values] if isinstance(values, str) else values:
            if not isinstance(value, str):
                raise UnsupportedPolicy(f"Principal values must be strings (resolve intrinsics first): {value!r}")
            if value == principal_arn or (kind == "AWS" and value == "*"):
                return "principal"
            if kind != "AWS":
                continue
            account = value if re.fullmatch(r"\d{12}", value) else None
            if re.fullmatch(r"arn:aws[a-z-]*:iam::\d{12}:root", value):
                account = _account_of(value)
            if account is not None and account == _account_of(principal_arn):
                return "account"
    return None


def _account_of(arn: str) -> str:
    parts = arn.split(":")
    return parts[4] if len(parts) > 5 else ""


# --------------------------------------------------------------------------- conditions

_STRING = {
    "StringEquals": (lambda p, v: p == v, False),
    "StringNotEquals": (lambda p, v: p == v, True),
    "StringEqualsIgnoreCase": (lambda p, v: p.lower() == v.lower(), False),
    "StringNotEqualsIgnoreCase": (lambda p, v: p.lower() == v.lower(), True),
    "StringLike": (lambda p, v: wildcard_match(p, v), False),
    "StringNotLike": (lambda p, v: wildcard_match(p, v), True),
    "ArnEquals": (arn_matches, False),
    "ArnLike": (arn_matches, False),
    "ArnNotEquals": (arn_matches, True),
    "ArnNotLike": (arn_matches, True),
}
_NUMERIC = {
    "NumericEquals": (lambda v, p: v == p, False),
    "NumericNotEquals": (lambda v, p: v == p, True),
    "NumericLessThan": (lambda v, p: v < p, False),
    "NumericLessThanEquals": (lambda v, p: v <= p, False),
    "NumericGreaterThan": (lambda v, p: v > p, False),
    "NumericGreaterThanEquals": (lambda v, p: v >= p, False),
}


def conditions_hold(condition: Mapping[str, Any], context: Mapping[str, ContextValue]) -> bool:
    """All operators, and all keys under each, must hold (logical AND)."""
    if not isinstance(condition, Mapping):
        raise UnsupportedPolicy(f"Condition must be a mapping: {condition!r}")
    # Context keys are case-insensitive in IAM; their values are not.
    by_key = {key.lower(): value for key, value in context.items()}
    for operator, tests in condition.items():
        if not isinstance(tests, Mapping):
            raise UnsupportedPolicy(f"{operator}: must map condition keys to values: {tests!r}")
        for key, values in tests.items():
            policy_values = [values] if isinstance(values, (str, bool, int, float)) else values
            if not isinstance(policy_values, list) or not all(
                isinstance(v, (str, bool, int, float)) for v in policy_values
            ):
                raise UnsupportedPolicy(
                    f"{operator} {key}: values must be plain (resolve intrinsics first): {values!r}"
                )
            if not _condition_holds(operator, key, policy_values, by_key):
                return False
    return True


def _condition_holds(operator: str, key: str, policy_values: list[Any], context: Mapping[str, ContextValue]) -> bool:
    qualifier, _, base = operator.rpartition(":")
    if qualifier not in ("", "ForAnyValue", "ForAllValues"):
        raise UnsupportedPolicy(f"unknown set operator {qualifier!r} in {operator!r}")
    if_exists = base.endswith("IfExists") and base != "IfExists"
    if if_exists:
        base = base.removesuffix("IfExists")
    present = key.lower() in context
    value = context.get(key.lower())

    if base == "Null":
        if qualifier or if_exists:
            raise UnsupportedPolicy(f"{operator} is not a valid operator")
        wanted = {_as_bool(v, operator) for v in policy_values}
        if len(wanted) != 1:
            raise UnsupportedPolicy(f"{operator} {key}: give either true or false")
        return (not present) if wanted.pop() else present

    match, negated = _matcher(base, operator)
    if not present:
        if if_exists or qualifier == "ForAllValues":
            return True
        if qualifier == "ForAnyValue":
            return False
        return negated  # a missing key matches nothing: positive operators fail, negated ones hold
    values = list(value) if isinstance(value, (list, tuple)) else [value]
    if not qualifier:
        if len(values) != 1:
            raise UnsupportedPolicy(f"{key} has several values: use ForAnyValue: or ForAllValues: with {base}")
        return _single(match, negated, policy_values, values[0], operator)
    results = [_single(match, negated, policy_values, v, operator) for v in values]
    return all(results) if qualifier == "ForAllValues" else any(results)


def _single(match: Callable[[Any, Any], bool], negated: bool, policy_values: list[Any], value: Any, op: str) -> bool:
    hit = any(match(p, value) for p in policy_values)
    return not hit if negated else hit


def _matcher(base: str, operator: str) -> tuple[Callable[[Any, Any], bool], bool]:
    if base in _STRING:
        compare, negated = _STRING[base]

        def string(policy: Any, value: Any) -> bool:
            if not isinstance(policy, str) or not isinstance(value, str):
                raise UnsupportedPolicy(f"{operator} compares strings, got {policy!r} and {value!r}")
            if "${" in policy:
                raise UnsupportedPolicy(f"policy variables are not supported: {policy!r}")
            return compare(policy, value)

        return string, negated
    if base in _NUMERIC:
        compare, negated = _NUMERIC[base]
        return (lambda policy, value: compare(_as_number(value, operator), _as_number(policy, operator))), negated
    if base == "Bool":
        return (lambda policy, value: _as_bool(policy, operator) == _as_bool(value, operator)), False
    raise UnsupportedPolicy(f"condition operator {operator!r} is not supported")


def _as_bool(value: Any, operator: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise UnsupportedPolicy(f"{operator}: {value!r} is not a boolean")


def _as_number(value: Any, operator: str) -> float:
    if isinstance(value, bool):
        raise UnsupportedPolicy(f"{operator}: {value!r} is not a number")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise UnsupportedPolicy(f"{operator}: {value!r} is not a number") from None


# --------------------------------------------------------------------------- templates


@dataclass(frozen=True)
class Environment:
    """Where a stack is deployed: what its pseudo parameters resolve to."""

    account: str
    region: str
    partition: str = "aws"
    url_suffix: str = "amazonaws.com"


@dataclass
class TemplateResolver:
    """Resolves intrinsics in the templates of one cloud assembly (several stacks, several accounts).

    ``environments`` maps each stack name to its account and region; ``parameters``
    optionally gives values for template parameters, by stack and parameter name.
    """

    templates: Mapping[str, Mapping[str, Any]]
    environments: Mapping[str, Environment]
    parameters: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    _exports: dict[str, list[tuple[str, Any]]] | None = field(default=None, init=False, repr=False)

    def resolve(self, stack: str, value: Any) -> Any:
        """``value`` (any part of ``stack``'s template) with every intrinsic replaced."""
        if stack not in self.templates:
            raise Unresolvable(f"unknown stack {stack!r}")
        return self._resolve(stack, value, ())

    def resource(self, stack: str, logical_id: str) -> Mapping[str, Any]:
        try:
            return self.templates[stack]["Resources"][logical_id]
        except KeyError:
            raise Unresolvable(f"{stack}: no resource {logical_id!r}") from None

    def env(self, stack: str) -> Environment:
        try:
            return self.environments[stack]
        except KeyError:
            raise Unresolvable(f"no environment (account, region) given for stack {stack!r}") from None

    # ------------------------------------------------------------------ intrinsics
    def _resolve(self, stack: str, value: Any, seen: tuple[str, ...]) -> Any:
        if isinstance(value, list):
            return [self._resolve(stack, item, seen) for item in value]
        if not isinstance(value, Mapping):
            return value
        if len(value) == 1:
            (name, argument), *_ = value.items()
            if name == "Ref":
                return self._ref(stack, argument, seen)
            if name.startswith("Fn::"):
                handler = _INTRINSICS.get(name)
                if handler is None:
                    raise Unresolvable(f"{stack}: {name} is not supported: {value!r}")
                return handler(self, stack, argument, seen)
        return {key: self._resolve(stack, item, seen) for key, item in value.items()}

    def _ref(self, stack: str, name: Any, seen: tuple[str, ...]) -> Any:
        if not isinstance(name, str):
            raise Unresolvable(f"{stack}: Ref needs a name: {name!r}")
        env = self.env(stack)
        pseudo = {
            "AWS::AccountId": env.account,
            "AWS::Region": env.region,
            "AWS::Partition": env.partition,
            "AWS::URLSuffix": env.url_suffix,
            "AWS::StackName": stack,
        }
        if name in pseudo:
            return pseudo[name]
        if name.startswith("AWS::"):
            raise Unresolvable(f"{stack}: pseudo parameter {name} is not supported")
        template = self.templates[stack]
        if name in template.get("Parameters", {}):
            try:
                return self.parameters[stack][name]
            except KeyError:
                raise Unresolvable(f"{stack}: no value given for parameter {name}") from None
        return self._attribute(stack, name, None, seen)

    def _attribute(self, stack: str, logical_id: str, attribute: str | None, seen: tuple[str, ...]) -> Any:
        here = f"{stack}/{logical_id}.{attribute or 'Ref'}"
        if here in seen:
            raise Unresolvable(f"circular reference: {' -> '.join((*seen, here))}")
        resource = self.resource(stack, logical_id)
        rules = _RESOURCE_TYPES.get(resource["Type"])
        getter = None if rules is None else rules.get(attribute or "Ref")
        if getter is None:
            what = "Ref" if attribute is None else f"Fn::GetAtt {attribute}"
            raise Unresolvable(f"{stack}: {what} of {logical_id} ({resource['Type']}) is not supported")
        physical = _Physical(self, stack, logical_id, resource, (*seen, here))
        return getter(physical)

    def find_export(self, name: str, seen: tuple[str, ...]) -> tuple[str, Any]:
        """The stack exporting ``name`` and the (unresolved) value of its output."""
        if self._exports is None:
            exports: dict[str, list[tuple[str, Any]]] = {}
            for stack, template in self.templates.items():
                for output in template.get("Outputs", {}).values():
                    if "Export" in output:
                        export = self._resolve(stack, output["Export"]["Name"], seen)
                        exports.setdefault(export, []).append((stack, output["Value"]))
            self._exports = exports
        found = self._exports.get(name, [])
        if len(found) != 1:
            raise Unresolvable(f"export {name!r} is defined {len(found)} times in the given templates")
        return found[0]


def _join(resolver: TemplateResolver, stack: str, argument: Any, seen: tuple[str, ...]) -> str:
    delimiter, items = _pair(argument, "Fn::Join")
    parts = resolver._resolve(stack, items, seen)
    if not isinstance(parts, list) or not all(isinstance(p, str) for p in [delimiter, *parts]):
        raise Unresolvable(f"{stack}: Fn::Join needs strings, got {parts!r}")
    return delimiter.join(parts)


def _select(resolver: TemplateResolver, stack: str, argument: Any, seen: tuple[str, ...]) -> Any:
    index, items = _pair(argument, "Fn::Select")
    index = int(resolver._resolve(stack, index, seen))
    values = resolver._resolve(stack, items, seen)
    if not isinstance(values, list) or not 0 <= index < len(values):
        raise Unresolvable(f"{stack}: Fn::Select index {index} out of {values!r}")
    return values[index]


def _split(resolver: TemplateResolver, stack: str, argument: Any, seen: tuple[str, ...]) -> list[str]:
    delimiter, source = _pair(argument, "Fn::Split")
    text = resolver._resolve(stack, source, seen)
    if not isinstance(text, str):
        raise Unresolvable(f"{stack}: Fn::Split needs a string, got {text!r}")
    return text.split(delimiter)


def _sub(resolver: TemplateResolver, stack: str, argument: Any, seen: tuple[str, ...]) -> str:
    text, variables = (argument, {}) if isinstance(argument, str) else _pair(argument, "Fn::Sub")
    variables = {k: resolver._resolve(stack, v, seen) for k, v in variables.items()}

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name.startswith("!"):
            return "${" + name[1:] + "}"
        if name in variables:
            value = variables[name]
        elif "." in name and not name.startswith("AWS::"):
            logical_id, attribute = name.split(".", 1)
            value = resolver._attribute(stack, logical_id, attribute, seen)
        else:
            value = resolver._ref(stack, name, seen)
        if not isinstance(value, str):
            raise Unresolvable(f"{stack}: Fn::Sub variable {name} is not a string: {value!r}")
        return value

    return re.sub(r"\$\{([^}]+)\}", replace, text)


def _get_att(resolver: TemplateResolver, stack: str, argument: Any, seen: tuple[str, ...]) -> Any:
    if isinstance(argument, str):
        argument = argument.split(".", 1)
    logical_id, attribute = _pair(argument, "Fn::GetAtt")
    attribute = resolver._resolve(stack, attribute, seen)
    return resolver._attribute(stack, logical_id, attribute, seen)


def _import_value(resolver: TemplateResolver, stack: str, argument: Any, seen: tuple[str, ...]) -> Any:
    name = resolver._resolve(stack, argument, seen)
    if not isinstance(name, str):
        raise Unresolvable(f"{stack}: Fn::ImportValue needs a name, got {name!r}")
    exporter, value = resolver.find_export(name, seen)
    return resolver._resolve(exporter, value, (*seen, f"import {name}"))


def _find_in_map(resolver: TemplateResolver, stack: str, argument: Any, seen: tuple[str, ...]) -> Any:
    if not isinstance(argument, list) or len(argument) != 3:
        raise Unresolvable(f"{stack}: Fn::FindInMap needs [map, key, key]: {argument!r}")
    name, first, second = (resolver._resolve(stack, a, seen) for a in argument)
    try:
        return resolver._resolve(stack, resolver.templates[stack]["Mappings"][name][first][second], seen)
    except KeyError:
        raise Unresolvable(f"{stack}: no mapping {name}/{first}/{second}") from None


def _pair(argument: Any, name: str) -> tuple[Any, Any]:
    if not isinstance(argument, list) or len(argument) != 2:
        raise Unresolvable(f"{name} needs two arguments: {argument!r}")
    return argument[0], argument[1]


_INTRINSICS: dict[str, Callable[[TemplateResolver, str, Any, tuple[str, ...]], Any]] = {
    "Fn::Join": _join,
    "Fn::Select": _select,
    "Fn::Split": _split,
    "Fn::Sub": _sub,
    "Fn::GetAtt": _get_att,
    "Fn::ImportValue": _import_value,
    "Fn::FindInMap": _find_in_map,
}


@dataclass(frozen=True)
class _Physical:
    """One resource's view for the attribute rules: its name properties and stable generated ids."""

    resolver: TemplateResolver
    stack: str
    logical_id: str
    resource: Mapping[str, Any]
    seen: tuple[str, ...]

    @property
    def env(self) -> Environment:
        return self.resolver.env(self.stack)

    def prop(self, name: str) -> Any:
        value = self.resource.get("Properties", {}).get(name)
        return None if value is None else self.resolver._resolve(self.stack, value, self.seen)

    def name(self, prop: str, *, lower: bool = False, limit: int = 64) -> str:
        """The explicit name property, or one CloudFormation-style: ``<stack>-<logical id>-<suffix>``."""
        explicit = self.prop(prop)
        if explicit is not None:
            if not isinstance(explicit, str):
                raise Unresolvable(f"{self.stack}: {self.logical_id}.{prop} is not a string: {explicit!r}")
            return explicit
        suffix = self.digest(12, "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ")
        generated = f"{self.stack}-{self.logical_id}"[: limit - len(suffix) - 1] + f"-{suffix}"
        return generated.lower() if lower else generated

    def digest(self, length: int, alphabet: str) -> str:
        number = int.from_bytes(hashlib.sha256(f"{self.stack}/{self.logical_id}".encode()).digest(), "big")
        chars = []
        for _ in range(length):
            number, index = divmod(number, len(alphabet))
            chars.append(alphabet[index])
        return "".join(chars)

    def uuid(self) -> str:
        h = self.digest(32, "0123456789abcdef")
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"

    def arn(self, service: str, rest: str, *, region: bool = True, account: bool = True) -> str:
        env = self.env
        return f"arn:{env.partition}:{service}:{env.region if region else ''}:{env.account if account else ''}:{rest}"

    def path(self) -> str:
        path = self.prop("Path") or "/"
        if not isinstance(path, str) or not path.startswith("/") or not path.endswith("/"):
            raise Unresolvable(f"{self.stack}: {self.logical_id}.Path must look like /a/b/: {path!r}")
        return path


def _domain_id(r: _Physical) -> str:
    return "d-" + r.digest(12, "abcdefghijklmnopqrstuvwxyz0123456789")


def _profile_arn(r: _Physical) -> str:
    domain, name = r.prop("DomainId"), r.prop("UserProfileName")
    if not isinstance(domain, str) or not isinstance(name, str):
        raise Unresolvable(f"{r.stack}: {r.logical_id} needs DomainId and UserProfileName strings")
    return r.arn("sagemaker", f"user-profile/{domain}/{name}")


# What Ref and Fn::GetAtt return per resource type (CloudFormation's "Return values").
_RESOURCE_TYPES: dict[str, dict[str, Callable[[_Physical], Any]]] = {
    "AWS::IAM::Role": {
        "Ref": lambda r: r.name("RoleName"),
        "Arn": lambda r: r.arn("iam", f"role{r.path()}{r.name('RoleName')}", region=False),
        "RoleId": lambda r: "AROA" + r.digest(17, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"),
    },
    "AWS::IAM::ManagedPolicy": {
        "Ref": lambda r: r.arn("iam", f"policy{r.path()}{r.name('ManagedPolicyName')}", region=False),
        "PolicyArn": lambda r: r.arn("iam", f"policy{r.path()}{r.name('ManagedPolicyName')}", region=False),
    },
    "AWS::S3::Bucket": {
        "Ref": lambda r: r.name("BucketName", lower=True, limit=63),
        "Arn": lambda r: f"arn:{r.env.partition}:s3:::{r.name('BucketName', lower=True, limit=63)}",
        "DomainName": lambda r: f"{r.name('BucketName', lower=True, limit=63)}.s3.{r.env.url_suffix}",
        "RegionalDomainName": lambda r: (
            f"{r.name('BucketName', lower=True, limit=63)}.s3.{r.env.region}.{r.env.url_suffix}"
        ),
    },
    "AWS::KMS::Key": {
        "Ref": lambda r: r.uuid(),
        "KeyId": lambda r: r.uuid(),
        "Arn": lambda r: r.arn("kms", f"key/{r.uuid()}"),
    },
    "AWS::KMS::Alias": {"Ref": lambda r: r.prop("AliasName")},
    "AWS::SageMaker::Domain": {
        "DomainId": _domain_id,
        "DomainArn": lambda r: r.arn("sagemaker", f"domain/{_domain_id(r)}"),
    },
    "AWS::SageMaker::UserProfile": {"UserProfileArn": _profile_arn},
    "AWS::EC2::SecurityGroup": {"GroupId": lambda r: "sg-" + r.digest(17, "0123456789abcdef")},
    "AWS::EC2::Subnet": {"Ref": lambda r: "subnet-" + r.digest(17, "0123456789abcdef")},
    "AWS::DynamoDB::Table": {
        "Ref": lambda r: r.name("TableName", limit=255),
        "Arn": lambda r: r.arn("dynamodb", f"table/{r.name('TableName', limit=255)}"),
    },
    "AWS::DynamoDB::GlobalTable": {
        "Ref": lambda r: r.name("TableName", limit=255),
        "Arn": lambda r: r.arn("dynamodb", f"table/{r.name('TableName', limit=255)}"),
    },
    "AWS::SQS::Queue": {
        "Ref": lambda r: (
            f"https://sqs.{r.env.region}.{r.env.url_suffix}/{r.env.account}/{r.name('QueueName', limit=80)}"
        ),
        "Arn": lambda r: r.arn("sqs", r.name("QueueName", limit=80)),
        "QueueName": lambda r: r.name("QueueName", limit=80),
    },
    "AWS::SNS::Topic": {
        "Ref": lambda r: r.arn("sns", r.name("TopicName", limit=256)),
        "TopicArn": lambda r: r.arn("sns", r.name("TopicName", limit=256)),
        "TopicName": lambda r: r.name("TopicName", limit=256),
    },
    "AWS::Lambda::Function": {
        "Ref": lambda r: r.name("FunctionName"),
        "Arn": lambda r: r.arn("lambda", f"function:{r.name('FunctionName')}"),
    },
    "AWS::Events::EventBus": {
        "Ref": lambda r: r.name("Name", limit=256),
        "Name": lambda r: r.name("Name", limit=256),
        "Arn": lambda r: r.arn("events", f"event-bus/{r.name('Name', limit=256)}"),
    },
    "AWS::SageMaker::ModelPackageGroup": {
        "ModelPackageGroupArn": lambda r: r.arn("sagemaker", f"model-package-group/{r.name('ModelPackageGroupName')}"),
    },
}


# --------------------------------------------------------------------------- policies of a role


def role_logical_id(resolver: TemplateResolver, stack: str, role_name: str) -> str:
    """The logical id of the ``AWS::IAM::Role`` in ``stack`` whose (resolved) ``RoleName`` is ``role_name``."""
    found = [
        logical
        for logical, resource in resolver.templates[stack]["Resources"].items()
        if resource["Type"] == "AWS::IAM::Role"
        and resolver.resolve(stack, resource.get("Properties", {}).get("RoleName")) == role_name
    ]
    if len(found) != 1:
        raise Unresolvable(f"{len(found)} roles are named {role_name!r}")
    return found[0]


# AWS managed policies CDK attaches, with their documents as AWS publishes them.
AWS_MANAGED_POLICIES: dict[str, dict[str, Any]] = {
    "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole": {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
                "Resource": "*",
            }
        ],
    },
}


def role_policies(resolver: TemplateResolver, stack: str, role_logical: str) -> list[dict[str, Any]]:
    """Every identity policy document of a role in ``stack``, resolved.

    Covers the role's inline ``Policies``, ``AWS::IAM::ManagedPolicy`` and
    ``AWS::IAM::Policy`` resources of the stack attached to it, and its
    ``ManagedPolicyArns`` when they reference such a policy or one of
    :data:`AWS_MANAGED_POLICIES`; any other managed policy raises, because its content is unknown.
    """
    resources = resolver.templates[stack]["Resources"]
    role = resolver.resource(stack, role_logical)
    if role["Type"] != "AWS::IAM::Role":
        raise Unresolvable(f"{stack}: {role_logical} is not a role")
    documents = [resolver.resolve(stack, p["PolicyDocument"]) for p in role.get("Properties", {}).get("Policies", [])]
    attached: list[str] = []
    for logical, resource in resources.items():
        roles = resource.get("Properties", {}).get("Roles", [])
        if resource["Type"] in ("AWS::IAM::ManagedPolicy", "AWS::IAM::Policy") and {"Ref": role_logical} in roles:
            attached.append(logical)
    for arn in role.get("Properties", {}).get("ManagedPolicyArns", []):
        if isinstance(arn, Mapping) and set(arn) == {"Ref"} and arn["Ref"] in resources:
            if arn["Ref"] not in attached:
                attached.append(arn["Ref"])
        elif (managed := AWS_MANAGED_POLICIES.get(str(resolver.resolve(stack, arn)))) is not None:
            documents.append(managed)
        else:
            raise Unresolvable(f"{stack}: {role_logical} has a managed policy whose document is unknown: {arn!r}")
    for logical in attached:
        documents.append(resolver.resolve(stack, resources[logical]["Properties"]["PolicyDocument"]))
    if not documents:
        raise Unresolvable(f"{stack}: role {role_logical} has no policies")
    return documents

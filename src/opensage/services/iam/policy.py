"""IAM policy evaluation, with AWS's logic (one module, no I/O).

No maintained Python library evaluates IAM policies with conditions (policyuniverse expands
actions; moto's evaluator is part of moto), so this is written here, after AWS's reference
(``reference_policies_evaluation-logic``, ``..._elements_condition_operators``):

- a statement applies when its Action/NotAction matches the action (``*``/``?`` wildcards,
  case-insensitive), its Resource/NotResource matches the resource (wildcards, case-sensitive,
  ``${aws:username}``-style policy variables), its Principal/NotPrincipal matches (resource
  policies only) and every condition holds;
- an applying Deny wins; else an applying Allow allows; else the request is implicitly denied.
  A caller's identity policies and a resource policy of the same account (an S3 bucket's) are
  evaluated together: a Deny in either wins, an Allow in either allows (``principal_matches``
  says whom a resource policy's ``Principal`` names).

Conditions: the String, Numeric, Date, Bool, Binary, IpAddress, Arn and Null operators, their
``...IfExists`` forms and the ``ForAnyValue:``/``ForAllValues:`` set qualifiers. A key absent
from the request makes a condition false, except for negated operators (``StringNotEquals``,
``NotIpAddress``, ``ArnNotLike``...: true), ``...IfExists`` (true) and ``ForAllValues:`` (true).
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import ipaddress
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

# A request context: key (case-insensitive, looked up lower-cased) -> value(s). Values are
# strings, lists of strings, booleans or numbers; a Mapping may compute values lazily.
Context = Mapping[str, Any]


class MalformedPolicy(ValueError):
    """A policy document AWS would refuse (``MalformedPolicyDocument``)."""


class Decision(StrEnum):  # SimulatePrincipalPolicy's EvalDecision words
    ALLOWED = "allowed"
    EXPLICIT_DENY = "explicitDeny"
    IMPLICIT_DENY = "implicitDeny"


@dataclass(frozen=True)
class Statement:
    effect: str  # Allow | Deny
    sid: str
    actions: tuple[str, ...] | None  # None: NotAction is used
    not_actions: tuple[str, ...] | None
    resources: tuple[str, ...] | None  # None (both): the statement names no resource
    not_resources: tuple[str, ...] | None
    conditions: tuple[tuple[str, str, tuple[str, ...]], ...]  # (operator, key, values)
    principals: Mapping[str, tuple[str, ...]] | None = None  # resource policies
    not_principals: Mapping[str, tuple[str, ...]] | None = None


@dataclass(frozen=True)
class Policy:
    """A parsed document and where it came from (SimulatePrincipalPolicy names it)."""

    source_id: str  # e.g. "user_alice_inline" or a managed policy's ARN
    source_type: str  # IAM's PolicySourceType: user | group | role | aws-managed | ...
    statements: tuple[Statement, ...]


@dataclass(frozen=True)
class Matched:
    source_id: str
    source_type: str
    sid: str
    effect: str


@dataclass(frozen=True)
class Result:
    decision: Decision
    matched: tuple[Matched, ...] = field(default=())

    @property
    def allowed(self) -> bool:
        return self.decision is Decision.ALLOWED


# -- parsing ---------------------------------------------------------------------------------

def _strings(value: Any, what: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise MalformedPolicy(f"Syntax errors in policy: {what} must be a string or a non-empty "
                          f"list of strings.")


def _condition_values(value: Any) -> tuple[str, ...]:
    items = value if isinstance(value, list) else [value]
    out: list[str] = []
    for item in items:
        if isinstance(item, bool):
            out.append("true" if item else "false")
        elif isinstance(item, (str, int, float)):
            out.append(str(item))
        else:
            raise MalformedPolicy("Syntax errors in policy: condition values must be strings, "
                                  "numbers or booleans.")
    return tuple(out)


def _principals(value: Any) -> Mapping[str, tuple[str, ...]]:
    if value == "*":
        return {"AWS": ("*",)}
    if not isinstance(value, dict) or not value:
        raise MalformedPolicy("Syntax errors in policy: Principal must be \"*\" or a map.")
    return {str(k): _strings(v, "Principal") for k, v in value.items()}


def parse(document: str | Mapping[str, Any], source_id: str = "",
          source_type: str = "none", *, resource_policy: bool = False) -> Policy:
    """A policy document (JSON text or parsed) as a Policy, or MalformedPolicy."""
    if isinstance(document, str):
        try:
            document = json.loads(document)
        except ValueError:
            raise MalformedPolicy("This policy contains invalid Json") from None
    if not isinstance(document, Mapping):
        raise MalformedPolicy("This policy contains invalid Json")
    version = document.get("Version", "2008-10-17")
    if version not in ("2012-10-17", "2008-10-17"):
        raise MalformedPolicy("The policy must contain a valid version string")
    raw = document.get("Statement")
    if raw is None:
        raise MalformedPolicy("Syntax errors in policy: missing Statement.")
    items = raw if isinstance(raw, list) else [raw]
    statements = []
    for index, item in enumerate(items):
        if not isinstance(item, Mapping):
            raise MalformedPolicy("Syntax errors in policy: a Statement must be a map.")
        statements.append(_statement(item, index, resource_policy))
    return Policy(source_id, source_type, tuple(statements))


_KNOWN = frozenset({"Sid", "Effect", "Action", "NotAction", "Resource", "NotResource",
                   "Condition", "Principal", "NotPrincipal"})


def _statement(item: Mapping[str, Any], index: int, resource_policy: bool) -> Statement:
    unknown = set(item) - _KNOWN
    if unknown:
        raise MalformedPolicy(f"Syntax errors in policy: unknown field {min(unknown)}.")
    effect = item.get("Effect")
    if effect not in ("Allow", "Deny"):
        raise MalformedPolicy("Syntax errors in policy: Effect must be Allow or Deny.")
    if ("Action" in item) == ("NotAction" in item):
        raise MalformedPolicy("Policy statement must contain actions." if "Action" not in item
                              else "Syntax errors in policy: Action and NotAction together.")
    if "Resource" in item and "NotResource" in item:
        raise MalformedPolicy("Syntax errors in policy: Resource and NotResource together.")
    if not resource_policy and "Resource" not in item and "NotResource" not in item:
        raise MalformedPolicy("Policy statement must contain resources.")
    if not resource_policy and ("Principal" in item or "NotPrincipal" in item):
        raise MalformedPolicy("Policy document should not specify a principal.")
    conditions: list[tuple[str, str, tuple[str, ...]]] = []
    block = item.get("Condition", {})
    if not isinstance(block, Mapping):
        raise MalformedPolicy("Syntax errors in policy: Condition must be a map.")
    for operator, keys in block.items():
        if _operator(operator) is None:
            raise MalformedPolicy(f"Invalid Condition type : {operator}.")
        if not isinstance(keys, Mapping):
            raise MalformedPolicy(f"Syntax errors in policy: condition {operator} must map "
                                  f"keys to values.")
        for key, values in keys.items():
            conditions.append((operator, str(key), _condition_values(values)))

    def opt(name: str) -> tuple[str, ...] | None:
        return _strings(item[name], name) if name in item else None

    return Statement(
        effect=effect, sid=str(item.get("Sid", f"statement{index + 1}")),
        actions=opt("Action"), not_actions=opt("NotAction"), resources=opt("Resource"),
        not_resources=opt("NotResource"), conditions=tuple(conditions),
        principals=_principals(item["Principal"]) if "Principal" in item else None,
        not_principals=_principals(item["NotPrincipal"]) if "NotPrincipal" in item else None)


# -- matching --------------------------------------------------------------------------------

@functools.lru_cache(maxsize=4096)
def _glob(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    parts = (".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile("".join(parts), (re.IGNORECASE if ignore_case else 0) | re.DOTALL)


def glob_match(pattern: str, value: str, ignore_case: bool = False) -> bool:
    if pattern == "*":
        return True
    return _glob(pattern, ignore_case).fullmatch(value) is not None


_VARIABLE = re.compile(r"\$\{([^}]*)\}")


def _substitute(pattern: str, context: Context) -> str | None:
    """``${aws:username}`` and friends; None when a variable has no value (no match)."""
    if "${" not in pattern:
        return pattern
    missing = False

    def value(match: re.Match[str]) -> str:
        nonlocal missing
        name = match.group(1)
        if name in ("*", "?", "$"):
            return name
        found = _lookup(context, name)
        if found is None or len(found) != 1:
            missing = True
            return ""
        return found[0]

    out = _VARIABLE.sub(value, pattern)
    return None if missing else out


@functools.lru_cache(maxsize=4096)
def _any_of(patterns: tuple[str, ...], ignore_case: bool) -> re.Pattern[str]:
    """One regex for a statement's list of wildcard patterns (one match per check)."""
    return re.compile("|".join(f"(?:{_glob(p, ignore_case).pattern})" for p in patterns),
                      (re.IGNORECASE if ignore_case else 0) | re.DOTALL)


def action_matches(patterns: tuple[str, ...], action: str) -> bool:
    return _any_of(patterns, True).fullmatch(action) is not None


def resource_matches(patterns: tuple[str, ...], resource: str, context: Context) -> bool:
    if "*" in patterns:
        return True
    for pattern in patterns:
        resolved = _substitute(pattern, context)
        if resolved is not None and (arn_like(resolved, resource) if resolved.startswith(
                "arn:") and resolved.count(":") >= 5 else glob_match(resolved, resource)):
            return True
    return False


@functools.lru_cache(maxsize=4096)
def _arn_regex(pattern: str) -> re.Pattern[str] | None:
    """The six colon-separated parts, each matched on its own: ``*``/``?`` in the first five
    do not cross a colon; the last part (the resource) keeps its colons."""
    parts = pattern.split(":", 5)
    if len(parts) != 6:
        return None

    def part(text: str, last: bool) -> str:
        star, one = (".*", ".") if last else ("[^:]*", "[^:]")
        return "".join(star if c == "*" else one if c == "?" else re.escape(c) for c in text)

    return re.compile(":".join(part(p, i == 5) for i, p in enumerate(parts)), re.DOTALL)


def arn_like(pattern: str, arn: str) -> bool:
    """ArnLike: each of the six colon-separated parts matched on its own."""
    if pattern == "*":
        return True
    regex = _arn_regex(pattern)
    return regex is not None and arn.count(":") >= 5 and regex.fullmatch(arn) is not None


@dataclass(frozen=True)
class Caller:
    """Who a resource policy's ``Principal``/``NotPrincipal`` is matched against."""

    arn: str  # the IAM user's ARN, or the assumed-role session's (arn:aws:sts::...)
    account: str
    role_arn: str = ""  # a session's role, with its path (arn:aws:iam::<acct>:role/...)


def principal_matches(principals: Mapping[str, tuple[str, ...]], caller: Caller,
                      effect: str) -> bool:
    """Whether a statement's ``Principal`` names ``caller``, as AWS reads it in a resource
    policy of the caller's own account: ``*`` (or ``{"AWS": "*"}``) is everyone; a user ARN
    that user; a role ARN every session of the role; a session ARN that session. The account
    (``<acct>`` or ``arn:aws:iam::<acct>:root``) delegates to IAM: in an Allow it grants
    nothing by itself (the caller's identity policies decide), in a Deny it names every
    principal of the account. ``Service``/``Federated`` principals never sign here."""
    for kind, names in principals.items():
        if kind != "AWS":
            continue
        for name in names:
            if name == "*" or name == caller.arn or (caller.role_arn
                                                      and name == caller.role_arn):
                return True
            if effect == "Deny" and name in (caller.account,
                                             f"arn:aws:iam::{caller.account}:root"):
                return True
    return False


def not_principal_matches(principals: Mapping[str, tuple[str, ...]], caller: Caller) -> bool:
    """Whether ``NotPrincipal`` exempts ``caller``: only ``*`` or its exact ARN (as AWS: a
    role's sessions are exempt only by their session ARN, an account's users not by the
    account's)."""
    return any(name == "*" or name == caller.arn
               for kind, names in principals.items() if kind == "AWS" for name in names)


# Condition keys that keep an Allow to "*" from being public (S3's "Block Public Access"
# reading of a policy): the caller's or the source's identity or network is fixed.
_RESTRICTING = frozenset({
    "aws:sourceip", "aws:sourcevpc", "aws:sourcevpce", "aws:sourcearn", "aws:sourceaccount",
    "aws:sourceowner", "aws:sourceorgid", "aws:principalaccount", "aws:principalorgid",
    "aws:principalarn", "aws:userid", "aws:principalorgpaths", "aws:sourceorgpaths"})


def is_public(policy: Policy) -> bool:
    """GetBucketPolicyStatus's ``IsPublic``: some Allow names ``*`` (or uses NotPrincipal)
    without a condition that fixes who or where the caller is (an ``IpAddress`` of
    ``0.0.0.0/0`` or ``::/0`` fixes nothing)."""
    for st in policy.statements:
        if st.effect != "Allow":
            continue
        if st.not_principals is None and not any(
                "*" in names for kind, names in (st.principals or {}).items() if kind == "AWS"):
            continue
        restricted = False
        for operator, key, values in st.conditions:
            op = _operator(operator)
            if (op is None or op.negated or op.if_exists or op.null
                    or key.lower() not in _RESTRICTING):
                continue
            if any("*" in v or v in ("0.0.0.0/0", "::/0") for v in values):
                continue
            restricted = True
        if not restricted:
            return True
    return False


# -- conditions ------------------------------------------------------------------------------

def _lookup(context: Context, key: str) -> list[str] | None:
    value = context.get(key.lower())
    if value is None:
        return None
    if isinstance(value, bool):
        return ["true" if value else "false"]
    if isinstance(value, (list, tuple, set, frozenset)):
        return [("true" if v else "false") if isinstance(v, bool) else str(v) for v in value]
    return [str(value)]


def _number(raw: str) -> float | None:
    try:
        return float(raw)
    except ValueError:
        return None


def _date(raw: str) -> float | None:
    number = _number(raw)
    if number is not None:
        return number
    try:
        parsed = dt.datetime.fromisoformat(raw)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.timestamp()


@functools.lru_cache(maxsize=4096)
def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


@functools.lru_cache(maxsize=1024)
def _network(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        return None


def _ip(have: str, want: str) -> bool:
    """``have`` inside the CIDR ``want`` (both parsed once, then from memory: a policy's
    networks and the callers' addresses repeat)."""
    address, network = _address(have), _network(want)
    return (address is not None and network is not None
            and address.version == network.version and address in network)


def _compare(parse_value: Callable[[str], float | None],
             test: Callable[[float, float], bool]) -> Callable[[str, str], bool]:
    def check(have: str, want: str) -> bool:
        a, b = parse_value(have), parse_value(want)
        return a is not None and b is not None and test(a, b)
    return check


def _binary(have: str, want: str) -> bool:
    try:
        return base64.b64decode(have) == base64.b64decode(want)
    except ValueError:
        return have == want


# base operator -> (the positive test of one context value against one policy value, negated)
_OPERATORS: dict[str, tuple[Callable[[str, str], bool], bool]] = {
    "StringEquals": (lambda h, w: h == w, False),
    "StringNotEquals": (lambda h, w: h == w, True),
    "StringEqualsIgnoreCase": (lambda h, w: h.lower() == w.lower(), False),
    "StringNotEqualsIgnoreCase": (lambda h, w: h.lower() == w.lower(), True),
    "StringLike": (lambda h, w: glob_match(w, h), False),
    "StringNotLike": (lambda h, w: glob_match(w, h), True),
    "NumericEquals": (_compare(_number, lambda a, b: a == b), False),
    "NumericNotEquals": (_compare(_number, lambda a, b: a == b), True),
    "NumericLessThan": (_compare(_number, lambda a, b: a < b), False),
    "NumericLessThanEquals": (_compare(_number, lambda a, b: a <= b), False),
    "NumericGreaterThan": (_compare(_number, lambda a, b: a > b), False),
    "NumericGreaterThanEquals": (_compare(_number, lambda a, b: a >= b), False),
    "DateEquals": (_compare(_date, lambda a, b: a == b), False),
    "DateNotEquals": (_compare(_date, lambda a, b: a == b), True),
    "DateLessThan": (_compare(_date, lambda a, b: a < b), False),
    "DateLessThanEquals": (_compare(_date, lambda a, b: a <= b), False),
    "DateGreaterThan": (_compare(_date, lambda a, b: a > b), False),
    "DateGreaterThanEquals": (_compare(_date, lambda a, b: a >= b), False),
    "Bool": (lambda h, w: h.lower() == w.lower(), False),
    "BinaryEquals": (_binary, False),
    "IpAddress": (_ip, False),
    "NotIpAddress": (_ip, True),
    "ArnEquals": (lambda h, w: arn_like(w, h), False),
    "ArnLike": (lambda h, w: arn_like(w, h), False),
    "ArnNotEquals": (lambda h, w: arn_like(w, h), True),
    "ArnNotLike": (lambda h, w: arn_like(w, h), True),
}


@dataclass(frozen=True)
class _Operator:
    test: Callable[[str, str], bool]
    negated: bool
    qualifier: str  # "", "ForAnyValue", "ForAllValues"
    if_exists: bool
    null: bool


@functools.lru_cache(maxsize=512)
def _operator(name: str) -> _Operator | None:
    qualifier, _, base = name.rpartition(":")
    if qualifier not in ("", "ForAnyValue", "ForAllValues"):
        return None
    if base == "Null":
        return None if qualifier else _Operator(lambda h, w: True, False, "", False, True)
    if_exists = base.endswith("IfExists")
    if if_exists:
        base = base[:-len("IfExists")]
    found = _OPERATORS.get(base)
    if found is None:
        return None
    return _Operator(found[0], found[1], qualifier, if_exists, False)


def condition_holds(operator: str, key: str, wanted: Sequence[str], context: Context) -> bool:
    op = _operator(operator)
    if op is None:
        return False
    have = _lookup(context, key)
    wanted = [w for w in (_substitute(v, context) for v in wanted) if w is not None]
    if op.null:
        absent = have is None or have == []
        return any((w.lower() == "true") == absent for w in wanted)
    if have is None:
        return op.if_exists or op.negated or op.qualifier == "ForAllValues"

    def one(value: str) -> bool:  # one context value against the policy's values
        hit = any(op.test(value, w) for w in wanted)
        return not hit if op.negated else hit

    if op.qualifier == "ForAllValues":
        return all(one(v) for v in have)
    if op.qualifier == "ForAnyValue" or not op.negated:
        return any(one(v) for v in have)
    return all(one(v) for v in have)  # negated, single-valued usage: no value may match


# -- evaluation ------------------------------------------------------------------------------

def statement_applies(statement: Statement, action: str, resource: str, context: Context,
                      caller: Caller | None = None) -> bool:
    if statement.actions is not None and not action_matches(statement.actions, action):
        return False
    if statement.not_actions is not None and action_matches(statement.not_actions, action):
        return False
    if statement.resources is not None and not resource_matches(statement.resources,
                                                                resource, context):
        return False
    if statement.not_resources is not None and resource_matches(statement.not_resources,
                                                                resource, context):
        return False
    if statement.principals is not None and (caller is None or not principal_matches(
            statement.principals, caller, statement.effect)):
        return False
    if statement.not_principals is not None and (caller is None or not_principal_matches(
            statement.not_principals, caller)):
        return False
    return all(condition_holds(op, key, values, context)
               for op, key, values in statement.conditions)


def evaluate(policies: Iterable[Policy], action: str, resource: str, context: Context,
             caller: Caller | None = None) -> Result:
    """AWS's decision over ``policies``: all of one kind, or a caller's identity policies and
    a resource policy of the same account together (an explicit Deny in either wins, else
    either may allow, else the request is implicitly denied). ``caller``: whom a resource
    policy's Principal is matched against (None: its statements never apply); ``context``
    keys lower-cased."""
    allows: list[Matched] = []
    denies: list[Matched] = []
    for policy in policies:
        for statement in policy.statements:
            if statement_applies(statement, action, resource, context, caller):
                matched = Matched(policy.source_id, policy.source_type, statement.sid,
                                  statement.effect)
                (denies if statement.effect == "Deny" else allows).append(matched)
    if denies:
        return Result(Decision.EXPLICIT_DENY, tuple(denies))
    if allows:
        return Result(Decision.ALLOWED, tuple(allows))
    return Result(Decision.IMPLICIT_DENY)

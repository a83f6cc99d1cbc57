"""The cluster query language: the documented examples, every operator, the readings chosen where the
docs are silent, error columns, static-mask caching, and invariants checked with hypothesis."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scheduler.ecs import cql
from scheduler.ecs.cql import CqlOptions, parse
from scheduler.errors import NeuronSimError, QueryError


# ------------------------------------------------------------------------------- a small cluster
@dataclass
class Box:
    """One fake container instance."""

    attrs: dict[str, str]
    ec2: str | None
    agent: str | None
    registered: str
    connected: bool = True
    groups: list[str] = field(default_factory=list)  # the group of each running task


def _attrs(itype: str, az: str, os_type: str = "linux", **custom: str) -> dict[str, str]:
    family = "WINDOWS_SERVER_2022_FULL" if os_type == "windows" else "LINUX"
    base = {"ecs.instance-type": itype, "ecs.availability-zone": az, "ecs.os-type": os_type,
            "ecs.os-family": family, "ecs.cpu-architecture": "x86_64", "ecs.ami-id": "ami-1234abcd",
            "ecs.vpc-id": "vpc-1234abcd", "ecs.subnet-id": f"subnet-{az[-1]}"}
    return base | custom


def boxes() -> list[Box]:
    return [
        Box(_attrs("t2.small", "us-east-1a", stack="prod"), "i-abcd1234", "1.14.5",
            "2018-01-15T00:00:00Z", groups=["service:production"]),
        Box(_attrs("t2.medium", "us-east-1b", "windows", stack="dev"), "i-0a1b2c3d4e5f60001", "1.9.0",
            "2018-02-13T10:00:00Z", groups=["service:production", "database"]),
        Box(_attrs("g2.2xlarge", "us-east-1a"), "i-wxyx7890", "1.20.1", "2018-06-18T22:28:28Z"),
        Box(_attrs("g2.2xlarge", "us-east-1d", stack="prod"), "i-0a1b2c3d4e5f60003", "1.14.4",
            "2018-03-01T08:00:00Z", connected=False, groups=["databases"]),
        Box(_attrs("inf1.xlarge", "us-east-1b", stack="ml", chips="1"), "i-0a1b2c3d4e5f60004", "1.51.0",
            "2020-05-05T12:00:00Z", groups=["service:daemon-service"]),
        Box(_attrs("inf2.xlarge", "us-east-1d", chips="1"), "i-0a1b2c3d4e5f60005", "1.70.2",
            "2023-09-01T00:00:00Z", groups=["service:daemon-service", "database"]),
        Box(_attrs("trn1.32xlarge", "us-east-1a", stack="ml", chips="16", team="ml platform"),
            "i-0a1b2c3d4e5f60006", "1.80.0", "2024-01-10T00:00:00Z"),
    ]


ALL = set(range(7))


class FakeTable:
    """Implements cql.InstanceTable over a list of boxes and counts the calls made to it."""

    def __init__(self, rows: list[Box] | None = None) -> None:
        self.rows = boxes() if rows is None else rows
        self.calls: Counter[str] = Counter()

    def __len__(self) -> int:
        return len(self.rows)

    def _objects(self, values: list[str | None]) -> np.ndarray:
        col = np.empty(len(values), dtype=object)
        col[:] = values
        return col

    def attribute_column(self, name: str) -> np.ndarray:
        self.calls["attribute_column"] += 1
        return self._objects([r.attrs.get(name) for r in self.rows])

    def subject_column(self, subject: str) -> np.ndarray:
        self.calls[subject] += 1
        if subject == "agentConnected":
            return np.array([r.connected for r in self.rows], dtype=bool)
        if subject == "registeredAt":
            return np.array([datetime.fromisoformat(r.registered).timestamp() for r in self.rows], np.float64)
        if subject == "runningTasksCount":
            return np.array([len(r.groups) for r in self.rows], dtype=np.int64)
        if subject == "ec2InstanceId":
            return self._objects([r.ec2 for r in self.rows])
        if subject == "agentVersion":
            return self._objects([r.agent for r in self.rows])
        raise KeyError(subject)

    def group_mask(self, group: str) -> np.ndarray:
        self.calls["group_mask"] += 1
        return np.array([group in r.groups for r in self.rows], dtype=bool)


class CodedTable(FakeTable):
    """Also offers the optional attribute_codes fast path, like the placement core's ClusterState."""

    def attribute_codes(self, name: str) -> tuple[np.ndarray, list[str | None]]:
        self.calls["attribute_codes"] += 1
        values: dict[str | None, int] = {}
        codes = [values.setdefault(r.attrs.get(name), len(values)) for r in self.rows]
        return np.array(codes, dtype=np.int64), list(values)


def selected(expression: str, table: FakeTable | None = None, options: CqlOptions = cql.DEFAULT_OPTIONS,
             ) -> set[int]:
    mask = parse(expression, options).evaluate(FakeTable() if table is None else table)
    assert mask.dtype == bool
    return set(np.flatnonzero(mask).tolist())


CI = CqlOptions(case_sensitive=False)
FIND = CqlOptions(regex_full_match=False)
LENIENT_MISSING = CqlOptions(missing_attribute_negations_match=True)


def test_the_fake_tables_implement_the_protocol() -> None:
    assert isinstance(FakeTable(), cql.InstanceTable)
    assert isinstance(CodedTable(), cql.InstanceTable)


# ------------------------------------------------------------------- reference §2.3, examples 1-24
EXAMPLES = [
    (1, "attribute:ecs.instance-type == t2.small", {0}),
    (2, "attribute:ecs.availability-zone in [us-east-1a, us-east-1b]", {0, 1, 2, 4, 6}),
    (3, "attribute:ecs.instance-type =~ g2.* and attribute:ecs.availability-zone != us-east-1d", {2}),
    (4, "task:group == service:production", {0, 1}),
    (5, "not(task:group == database)", {0, 2, 3, 4, 6}),
    (6, "runningTasksCount == 1", {0, 3, 4}),
    (7, "agentVersion < 1.14.5", {1, 3}),
    (8, "registeredAt < 2018-02-13", {0}),
    (9, "ec2InstanceId in ['i-abcd1234', 'i-wxyx7890']", {0, 2}),
    (10, "attribute:ecs.instance-type == g2.2xlarge", {2, 3}),
    (11, "attribute:stack == prod", {0, 3}),
    (12, "attribute:stack != prod", {1, 4, 6}),
    (13, "attribute:ecs.instance-type in [t2.small, t2.medium]", {0, 1}),
    (14, "attribute:ecs.instance-type =~ t2.* and attribute:ecs.availability-zone == us-east-1a", {0}),
    (15, "attribute:ecs.instance-type =~ t2.*", {0, 1}),
    (16, "task:group == databases", {3}),
    (17, "task:group == service:daemon-service", {4, 5}),
    (18, "attribute:ecs.os-family == WINDOWS_SERVER_2022_FULL", {1}),  # the template, filled in
    (19, "attribute:ecs.os-type == linux", ALL - {1}),
    (20, "attribute:ecs.instance-type == inf1.xlarge", {4}),
    (21, "attribute:ecs.instance-type == Inf1.xlarge", set()),
    (22, "attribute:ecs.instance-type == p2.xlarge", set()),
    (23, "attribute:ecs.instance-type == dl1.24xlarge", set()),
    (23, "attribute:ecs.instance-type == vt1.3xlarge", set()),
    (23, "attribute:ecs.instance-type == vt1.6xlarge", set()),
    (23, "attribute:ecs.instance-type == vt1.24xlarge", set()),
]


@pytest.mark.parametrize(("number", "expression", "expected"), EXAMPLES)
def test_reference_examples_select_the_right_instances(number: int, expression: str,
                                                       expected: set[int]) -> None:
    assert selected(expression) == expected, number
    assert selected(expression, CodedTable()) == expected, number


def test_example_21_capital_i_matches_only_when_case_insensitive() -> None:
    assert selected("attribute:ecs.instance-type == Inf1.xlarge", options=CI) == {4}
    assert selected("attribute:ecs.instance-type == Inf1.xlarge") == set()


def test_accelerator_examples_select_matching_types_when_present() -> None:
    rows = [Box(_attrs(t, "us-east-1a"), f"i-{n}", "1.50.0", "2022-01-01")
            for n, t in enumerate(["p2.xlarge", "dl1.24xlarge", "vt1.3xlarge", "vt1.6xlarge", "vt1.24xlarge"])]
    for n, itype in enumerate(["p2.xlarge", "dl1.24xlarge", "vt1.3xlarge", "vt1.6xlarge", "vt1.24xlarge"]):
        assert selected(f"attribute:ecs.instance-type == {itype}", FakeTable(rows)) == {n}


def test_example_18_template_in_memberof_form_is_rejected_with_a_memberof_message() -> None:
    with pytest.raises(QueryError, match="memberOf") as info:
        parse("memberOf(attribute:ecs.os-family == WINDOWS_SERVER_<OS_Release>_<FULL or CORE>)")
    assert info.value.column == 1


def test_example_24_memberof_wrapper_and_missing_prefix_are_both_explained() -> None:
    expression = "memberOf(ecs.os-type=='windows')"
    with pytest.raises(QueryError) as info:
        parse(expression)
    message = str(info.value)
    assert info.value.column == 1
    assert "memberOf(...) wrapper is not part of the expression" in message
    assert "column 10: unknown subject 'ecs.os-type' (did you mean 'attribute:ecs.os-type'?)" in message
    assert info.value.expression == expression


def test_memberof_wrapper_around_a_valid_expression_shows_the_inner_expression() -> None:
    with pytest.raises(QueryError, match=r"write only what is inside it: attribute:ecs.os-type=='windows'"):
        parse("  memberOf( attribute:ecs.os-type=='windows' )")
    assert selected("attribute:ecs.os-type=='windows'") == {1}


def test_memberof_inside_a_larger_expression_is_explained() -> None:
    with pytest.raises(QueryError, match="'memberOf' is a placement constraint type") as info:
        parse("attribute:stack exists and memberOf(attribute:stack == prod) or attribute:x exists")
    assert info.value.column == 28


def test_corpus_constraint_expressions_parse() -> None:
    assert selected("attribute:ecs.instance-type == inf2.xlarge") == {5}
    assert selected("attribute:ecs.os-type == linux") == ALL - {1}
    with pytest.raises(QueryError, match=r"unexpected character '\$'"):
        parse("attribute:ecs.instance-type == ${local.instance_type}")


# ------------------------------------------------------------------------- operators and aliases
OPERATORS = [
    ("attribute:stack == prod", "attribute:stack equals prod", {0, 3}),
    ("attribute:stack != prod", "attribute:stack not_equals prod", {1, 4, 6}),
    ("agentVersion > 1.51", "agentVersion greater_than 1.51", {5, 6}),
    ("agentVersion >= 1.51", "agentVersion greater_than_equal 1.51", {4, 5, 6}),
    ("runningTasksCount < 1", "runningTasksCount less_than 1", {2, 6}),
    ("runningTasksCount <= 1", "runningTasksCount less_than_equal 1", {0, 2, 3, 4, 6}),
    ("attribute:stack exists", "attribute:stack exists", {0, 1, 3, 4, 6}),
    ("attribute:stack !exists", "attribute:stack not_exists", {2, 5}),
    ("attribute:ecs.availability-zone in [us-east-1d]", "attribute:ecs.availability-zone in [us-east-1d]",
     {3, 5}),
    ("attribute:ecs.availability-zone !in [us-east-1a]", "attribute:ecs.availability-zone not_in [us-east-1a]",
     {1, 3, 4, 5}),
    ("attribute:ecs.instance-type =~ inf.*", "attribute:ecs.instance-type matches inf.*", {4, 5}),
    ("attribute:ecs.instance-type !~ t2.*", "attribute:ecs.instance-type not_matches t2.*", {2, 3, 4, 5, 6}),
]


@pytest.mark.parametrize(("symbol", "alias", "expected"), OPERATORS)
def test_every_operator_and_its_word_alias(symbol: str, alias: str, expected: set[int]) -> None:
    assert selected(symbol) == expected
    assert selected(alias) == expected
    assert str(parse(alias)) == str(parse(symbol))


@pytest.mark.parametrize(("expression", "expected"), [
    ("attribute:stack == prod && attribute:ecs.availability-zone == us-east-1a", {0}),
    ("attribute:stack == prod and attribute:ecs.availability-zone == us-east-1a", {0}),
    ("attribute:stack == dev || attribute:stack == ml", {1, 4, 6}),
    ("attribute:stack == dev or attribute:stack == ml", {1, 4, 6}),
    ("!(attribute:stack exists)", {2, 5}),
    ("not (attribute:stack exists)", {2, 5}),
    ("not attribute:stack exists", {2, 5}),
    ("!attribute:stack exists", {2, 5}),
    ("not(not(attribute:stack exists))", {0, 1, 3, 4, 6}),
])
def test_logical_operators_and_their_aliases(expression: str, expected: set[int]) -> None:
    assert selected(expression) == expected


def test_and_binds_tighter_than_or() -> None:
    a, b, c = ("attribute:ecs.instance-type == t2.small", "attribute:stack == prod",
               "attribute:ecs.availability-zone == us-east-1d")
    assert selected(f"{a} or {b} and {c}") == {0, 3}          # a or (b and c)
    assert selected(f"({a} or {b}) and {c}") == {3}
    assert selected(f"{b} and {c} or {a}") == {0, 3}          # (b and c) or a
    assert selected(f"{a} || {b} && {c}") == {0, 3}


def test_not_binds_tighter_than_and() -> None:
    a, b = "attribute:stack == prod", "attribute:ecs.availability-zone == us-east-1a"
    assert selected(f"not {a} and {b}") == {2, 6}             # (not a) and b
    assert selected(f"not({a} and {b})") == ALL - {0}
    assert selected(f"! {a} && {b}") == {2, 6}


def test_canonical_form_spells_operators_once_and_parenthesises_only_where_needed() -> None:
    query = parse("attribute:stack equals prod && agentVersion greater_than_equal 1.2 || "
                  "! (attribute:x not_exists)")
    assert str(query) == "attribute:stack == prod and agentVersion >= 1.2 or not(attribute:x !exists)"
    assert str(parse("(attribute:a == 1 or attribute:b == 2) and (attribute:c == 3 and attribute:d == 4)")) \
        == "(attribute:a == 1 or attribute:b == 2) and attribute:c == 3 and attribute:d == 4"
    assert str(parse("attribute:team == 'ml platform'")) == "attribute:team == 'ml platform'"
    assert str(parse("attribute:x == 'and'")) == "attribute:x == 'and'"


def test_query_properties() -> None:
    text = "attribute:ecs.instance-type =~ inf.*  and not(task:group == database)"
    query = parse(text)
    assert query.text == text
    assert query.subjects == frozenset({"attribute:ecs.instance-type", "task:group"})
    assert not query.is_static
    assert parse("attribute:ecs.instance-type == t2.small or agentVersion > 1.2").is_static
    assert not parse("runningTasksCount == 0").is_static
    assert parse(text) is query  # lru_cache on (expression, options)
    assert parse(text, CI) is not query
    assert parse("attribute:stack == prod") == parse("attribute:stack equals 'prod'")


# ------------------------------------------------------------------------------- values and lists
def test_quoted_list_items_single_double_and_bare() -> None:
    assert selected("attribute:ecs.instance-type in ['t2.small', \"inf2.xlarge\", g2.2xlarge]") == {0, 2, 3, 5}
    assert selected("attribute:ecs.instance-type in ['t2.small','inf2.xlarge']") == {0, 5}
    assert selected("attribute:ecs.instance-type in [t2.small]") == {0}


def test_quoted_values_may_hold_spaces_and_keywords() -> None:
    assert selected("attribute:team == 'ml platform'") == {6}
    assert selected('attribute:team == "ml platform"') == {6}
    assert selected("attribute:stack == 'and'") == set()


def test_equality_is_literal_not_a_wildcard() -> None:
    assert selected("attribute:ecs.instance-type == t2.*") == set()


def test_regex_arguments_with_groups_alternation_and_anchors() -> None:
    assert selected("attribute:ecs.instance-type =~ ^inf2\\.(xl|8xl)arge$") == {5}
    assert selected("(attribute:ecs.instance-type =~ ^inf2\\.(xl|8xl)arge$)") == {5}
    assert selected("attribute:ecs.instance-type =~ '^inf2\\.(xl|8xl)arge$'") == {5}
    assert selected("attribute:ecs.instance-type =~ (inf|trn)[0-9].*&&attribute:stack exists") == {4, 6}
    assert selected("attribute:ecs.instance-type =~ t2.*|g2.* and attribute:stack exists") == {0, 1, 3}
    assert selected("attribute:ecs.instance-type =~ [a-z]+1\\..* or attribute:stack == dev") == {1, 4, 6}


def test_regex_full_match_versus_find() -> None:
    assert selected("attribute:ecs.instance-type =~ xlarge") == set()
    assert selected("attribute:ecs.instance-type =~ xlarge", options=FIND) == {2, 3, 4, 5, 6}
    assert selected("attribute:ecs.instance-type =~ ^inf", options=FIND) == {4, 5}


def test_case_insensitive_option_covers_lists_regexes_and_ordering() -> None:
    assert selected("attribute:ecs.instance-type in [T2.SMALL, G2.2XLARGE]", options=CI) == {0, 2, 3}
    assert selected("attribute:ecs.instance-type in [T2.SMALL, G2.2XLARGE]") == set()
    assert selected("attribute:ecs.instance-type =~ INF.*", options=CI) == {4, 5}
    assert selected("attribute:ecs.instance-type =~ INF.*") == set()
    assert selected("attribute:ecs.os-family != linux", options=CI) == {1}
    assert selected("attribute:stack > MZ", options=CI) == {0, 3}     # prod > mz; ml, dev are not
    assert selected("attribute:stack > MZ") == {0, 1, 3, 4, 6}          # lower case sorts after 'M'


def test_agent_version_compares_as_a_version() -> None:
    assert selected("agentVersion < 1.9") == set()  # 1.14.5 < 1.9 is False
    assert selected("agentVersion > 1.9") == ALL - {1}
    assert selected("agentVersion == 1.9") == {1}   # 1.9.0
    assert selected("agentVersion <= 1.14.4") == {1, 3}
    assert selected("agentVersion != 1.9.0") == ALL - {1}


def test_agent_version_on_instances_without_a_readable_version_never_matches() -> None:
    rows = boxes()
    rows[0].agent = None
    rows[1].agent = "unknown"
    rows[2].agent = "v1.20.1-dev"
    table = FakeTable(rows)
    assert selected("agentVersion >= 1.0", table) == ALL - {0, 1}
    assert selected("agentVersion != 1.0", table) == ALL - {0, 1}


@pytest.mark.parametrize(("expression", "expected"), [
    ("registeredAt == 2018-02-13", {1}),
    ("registeredAt != 2018-02-13", ALL - {1}),
    ("registeredAt > 2018-02-13", {2, 3, 4, 5, 6}),
    ("registeredAt >= 2018-02-13", {1, 2, 3, 4, 5, 6}),
    ("registeredAt <= 2018-02-13", {0, 1}),
    ("registeredAt == 2018-06-18T22:28:28Z", {2}),
    ("registeredAt == 2018-06-18T22:28:28+00:00", {2}),
    ("registeredAt == 2018-06-18T22:28:28", {2}),
    ("registeredAt == 2018-06-18T23:28:28+01:00", {2}),
    ("registeredAt < 2018-06-18T23:28:28+01:00", {0, 1, 3}),
    ("registeredAt > 2018-06-18T22:28:27", {2, 4, 5, 6}),
    ("registeredAt >= '2020-05-05'", {4, 5, 6}),
])
def test_registered_at_accepts_the_four_date_formats(expression: str, expected: set[int]) -> None:
    assert selected(expression) == expected


def test_running_tasks_count_compares_numerically() -> None:
    assert selected("runningTasksCount > 1") == {1, 5}
    assert selected("runningTasksCount != 0") == {0, 1, 3, 4, 5}
    assert selected("runningTasksCount < 10") == ALL              # not the string order of '10'
    assert selected("runningTasksCount >= 0") == ALL
    assert selected("runningTasksCount < 99999999999999999999999999") == ALL


def test_attribute_ordering_is_numeric_for_numbers_and_textual_otherwise() -> None:
    assert selected("attribute:chips > 2") == {6}                   # 16 > 2 as numbers
    assert selected("attribute:chips >= 1") == {4, 5, 6}
    assert selected("attribute:chips < 1.5") == {4, 5}
    assert selected("attribute:ecs.availability-zone > us-east-1a") == {1, 3, 4, 5}
    assert selected("attribute:ecs.availability-zone <= us-east-1b") == {0, 1, 2, 4, 6}
    assert selected("attribute:stack >= 5") == set()                # no stack value is a number


def test_agent_connected_and_ec2_instance_id() -> None:
    assert selected("agentConnected == true") == ALL - {3}
    assert selected("agentConnected == FALSE") == {3}
    assert selected("agentConnected != true") == {3}
    assert selected("agentConnected in [true, false]") == ALL
    assert selected("agentConnected !in [true]") == {3}
    assert selected("agentConnected =~ f.*") == {3}
    assert selected("agentConnected !~ f.*") == ALL - {3}
    assert selected("ec2InstanceId == i-abcd1234") == {0}
    assert selected("ec2InstanceId =~ i-0a1b.*") == {1, 3, 4, 5, 6}
    assert selected("ec2InstanceId not_in [i-abcd1234]") == ALL - {0}


def test_task_group_lists_and_negations() -> None:
    assert selected("task:group in [databases, service:daemon-service]") == {3, 4, 5}
    assert selected("task:group != database") == {0, 2, 3, 4, 6}   # like not(task:group == database)
    assert selected("task:group not_in [database, databases]") == {0, 2, 4, 6}
    assert selected("task:group == nothing-runs-this") == set()


# ---------------------------------------------------------------------------- missing attributes
MISSING = [
    # expression, default reading, missing_attribute_negations_match=True
    ("attribute:stack != prod", {1, 4, 6}, {1, 2, 4, 5, 6}),
    ("attribute:stack not_in [prod, dev]", {4, 6}, {2, 4, 5, 6}),
    ("attribute:stack !~ pr.*", {1, 4, 6}, {1, 2, 4, 5, 6}),
    ("attribute:stack == prod", {0, 3}, {0, 3}),
    ("attribute:stack in [prod, ml]", {0, 3, 4, 6}, {0, 3, 4, 6}),
    ("attribute:stack =~ .*", {0, 1, 3, 4, 6}, {0, 1, 3, 4, 6}),
    ("attribute:stack exists", {0, 1, 3, 4, 6}, {0, 1, 3, 4, 6}),
    ("attribute:stack !exists", {2, 5}, {2, 5}),
    ("not(attribute:stack == prod)", {1, 2, 4, 5, 6}, {1, 2, 4, 5, 6}),
    ("attribute:stack < q", {0, 1, 3, 4, 6}, {0, 1, 3, 4, 6}),
    ("attribute:never-set != x", set(), ALL),
]


@pytest.mark.parametrize(("expression", "strict", "lenient"), MISSING)
def test_missing_attribute_under_both_readings(expression: str, strict: set[int], lenient: set[int]) -> None:
    assert selected(expression) == strict
    assert selected(expression, options=LENIENT_MISSING) == lenient
    assert selected(expression, CodedTable()) == strict
    assert selected(expression, CodedTable(), options=LENIENT_MISSING) == lenient


def test_missing_ec2_instance_id_follows_the_same_rule() -> None:
    rows = boxes()
    rows[6].ec2 = None  # an external instance
    assert selected("ec2InstanceId != i-abcd1234", FakeTable(rows)) == ALL - {0, 6}
    assert selected("ec2InstanceId != i-abcd1234", FakeTable(rows), LENIENT_MISSING) == ALL - {0}


# ----------------------------------------------------------------------------------------- errors
ERRORS = [
    ("attribute:ecs.instance-type ==", 31, "expected a value after '==', found end of expression"),
    ("ecs.os-type == linux", 1, "unknown subject 'ecs.os-type' (did you mean 'attribute:ecs.os-type'?)"),
    ("attribute:stack == prod and", 28, "expected a subject, 'not' or '(' after 'and', found end"),
    ("(attribute:stack == prod", 25, "to close the '(' at column 1, found end of expression"),
    ("attribute:stack == prod)", 24, "found ')' with no matching '('"),
    ("attribute:stack in [a, b", 25, "expected ',' or ']' in the list opened at column 20"),
    ("attribute:stack in []", 21, "expected a value after '[', found ']'"),
    ("attribute:stack in [a b]", 23, "expected ',' or ']'"),
    ("attribute:stack in prod", 20, "expected a list such as [a, b] after 'in'"),
    ("runningTasksCount =~ 1", 19, "operator '=~' cannot be used with runningTasksCount"),
    ("agentConnected > 1", 16, "operator '>' cannot be used with agentConnected"),
    ("task:group =~ service:.*", 12, "operator '=~' cannot be used with task:group"),
    ("attribute:stack = prod", 17, "unexpected character '='; use '=='"),
    ("attribute:stack == 'prod", 20, "unterminated quoted value"),
    ("registeredAt < 2018-13-45", 16, "expected a date such as 2018-06-18"),
    ("agentVersion < latest", 16, "expected a version such as 1.14.5"),
    ("runningTasksCount > 1.5", 21, "expected a whole number"),
    ("agentConnected == yes", 19, "expected true or false"),
    ("attribute: == x", 11, "expected an attribute name after 'attribute:'"),
    ("attribute:st@ck == x", 13, "invalid character '@' in attribute name"),
    ("attribute:stack prod", 17, "expected an operator after 'attribute:stack'"),
    ("attribute:stack EQUALS prod", 17, "operators are lower case: 'equals'"),
    ("attribute:stack == prod or or attribute:x exists", 28, "after 'or', found 'or'"),
    ("not", 4, "after 'not', found end of expression"),
    ("attribute:stack == and", 20, "found the keyword 'and' (quote it"),
    ("attribute:stack == prod attribute:x exists", 25, "expected 'and', 'or' or end of expression"),
    ("AgentVersion > 1", 1, "did you mean 'agentVersion'?"),
    ("attribute:x =~ ", 16, "expected a regular expression after '=~', found end of expression"),
    ("attribute:x =~ a'b", 17, "a quote inside an unquoted regular expression"),
    ("attribute:x == a & attribute:y exists", 18, "use '&&' or 'and'"),
]


@pytest.mark.parametrize(("expression", "column", "message"), ERRORS)
def test_syntax_errors_name_the_column_and_what_was_expected(expression: str, column: int,
                                                             message: str) -> None:
    with pytest.raises(QueryError) as info:
        parse(expression)
    assert info.value.column == column
    assert message in str(info.value)
    assert str(info.value).startswith(f"column {column}: ")
    assert info.value.expression == expression
    assert isinstance(info.value, NeuronSimError)


def test_invalid_regex_names_the_column_of_the_problem() -> None:
    expression = "attribute:ecs.instance-type =~ ^inf2\\.(xl"
    with pytest.raises(QueryError, match="invalid regular expression") as info:
        parse(expression)
    assert info.value.column == expression.index("(") + 1
    with pytest.raises(QueryError, match="invalid regular expression") as info:
        parse("attribute:x =~ 'a{99999999999}'")
    assert info.value.column == 17


def test_java_only_character_class_operations_are_rejected() -> None:
    for expression, offending in [("attribute:x =~ [a-z&&[^m]]", "&&"), ("attribute:x =~ '[a[bc]]'", "[b")]:
        with pytest.raises(QueryError, match="Java-only") as info:
            parse(expression)
        assert info.value.column == expression.index(offending) + 1
    assert selected("attribute:ecs.instance-type =~ '[a-z]+[0-9][.][a-z0-9]+'") == ALL
    assert selected("attribute:ecs.instance-type =~ [tg]2\\..*") == {0, 1, 2, 3}
    assert selected("attribute:stack =~ [p||d].*") == {0, 1, 3}  # '||' in a class is literal in Java too


def test_empty_expression_is_an_error() -> None:
    for text in ("", "   ", "\t\n"):
        with pytest.raises(QueryError, match="empty expression"):
            parse(text)


def test_non_string_expression_is_a_query_error() -> None:
    with pytest.raises(QueryError, match="must be a string"):
        parse(None)  # type: ignore[arg-type]


def test_expression_length_limit_is_2000_characters() -> None:
    head = "attribute:stack == '"
    exact = head + "a" * (2000 - len(head) - 1) + "'"
    assert len(exact) == 2000
    assert selected(exact) == set()
    with pytest.raises(QueryError, match="2001 characters long; the limit is 2000") as info:
        parse(exact + " ")
    assert info.value.column == 2001


def test_attribute_name_limit_is_128_characters() -> None:
    assert parse(f"attribute:{'n' * 128} exists").subjects == frozenset({f"attribute:{'n' * 128}"})
    with pytest.raises(QueryError, match="129 characters long; the limit is 128"):
        parse(f"attribute:{'n' * 129} exists")


def test_deep_nesting_is_a_query_error_not_a_recursion_error() -> None:
    with pytest.raises(QueryError, match="nested too deeply"):
        parse("(" * 150 + "attribute:x exists" + ")" * 150)
    with pytest.raises(QueryError, match="nested too deeply"):
        parse("not " * 150 + "attribute:x exists")
    assert selected("(" * 50 + "attribute:stack exists" + ")" * 50) == {0, 1, 3, 4, 6}


def test_validate_expression() -> None:
    assert cql.validate_expression("attribute:ecs.os-type == linux") is None
    with pytest.raises(QueryError):
        cql.validate_expression("attribute:ecs.os-type ==")


# ------------------------------------------------------------------------------------ static cache
def test_static_mask_is_cached_under_its_canonical_text_and_reused() -> None:
    table = FakeTable()
    query = parse("attribute:ecs.instance-type   matches inf.*")
    cache: dict = {}
    first = query.evaluate(table, cache)
    assert set(cache) == {"attribute:ecs.instance-type =~ inf.*"}
    calls = table.calls["attribute_column"]
    table.rows[0].attrs["ecs.instance-type"] = "inf2.48xlarge"  # the core would clear the cache here
    second = query.evaluate(table, cache)
    assert table.calls["attribute_column"] == calls              # nothing was read again
    assert np.array_equal(first, second)                         # the cached (now stale) mask
    assert set(np.flatnonzero(query.evaluate(table)).tolist()) == {0, 4, 5}
    cache.clear()
    assert set(np.flatnonzero(query.evaluate(table, cache)).tolist()) == {0, 4, 5}


def test_dynamic_subtree_is_re_evaluated_when_group_membership_changes() -> None:
    table = FakeTable()
    query = parse("attribute:ecs.os-type == linux and not(task:group == database) and runningTasksCount < 2")
    cache: dict = {}
    assert set(np.flatnonzero(query.evaluate(table, cache)).tolist()) == {0, 2, 3, 4, 6}
    assert set(cache) == {"attribute:ecs.os-type == linux"}     # only the maximal static subtree
    reads = table.calls["attribute_column"]
    table.rows[2].groups.append("database")
    assert set(np.flatnonzero(query.evaluate(table, cache)).tolist()) == {0, 3, 4, 6}
    table.rows[0].groups.append("web")                           # now runs two tasks
    assert set(np.flatnonzero(query.evaluate(table, cache)).tolist()) == {3, 4, 6}
    assert table.calls["attribute_column"] == reads
    assert table.calls["group_mask"] == 3


def test_every_maximal_static_subtree_is_cached_separately() -> None:
    query = parse("(attribute:stack == prod or agentVersion > 1.50) and task:group == database "
                  "and not(ec2InstanceId == i-abcd1234)")
    cache: dict = {}
    query.evaluate(FakeTable(), cache)
    assert set(cache) == {"attribute:stack == prod or agentVersion > 1.50",
                          "not(ec2InstanceId == i-abcd1234)"}


def test_cached_masks_are_read_only_and_results_are_fresh() -> None:
    table = FakeTable()
    query = parse("attribute:stack == prod")
    cache: dict = {}
    result = query.evaluate(table, cache)
    result[:] = True                                              # the caller owns its result
    assert set(np.flatnonzero(query.evaluate(table, cache)).tolist()) == {0, 3}
    with pytest.raises(ValueError):
        next(iter(cache.values()))[0] = True


def test_cache_keys_separate_options_and_stale_lengths_are_recomputed() -> None:
    table = FakeTable()
    cache: dict = {}
    expression = "attribute:ecs.instance-type == Inf1.xlarge"
    assert not parse(expression).evaluate(table, cache).any()
    assert set(np.flatnonzero(parse(expression, CI).evaluate(table, cache)).tolist()) == {4}
    assert len(cache) == 2
    table.rows.append(Box(_attrs("inf1.xlarge", "us-east-1a"), "i-7", "1.0", "2024-01-01"))
    assert set(np.flatnonzero(parse(expression, CI).evaluate(table, cache)).tolist()) == {4, 7}


def test_empty_table() -> None:
    mask = parse("attribute:stack == prod and task:group == x").evaluate(FakeTable([]), {})
    assert mask.shape == (0,)
    assert mask.dtype == bool


# -------------------------------------------------------------------------------------- invariants
ATOMS = [e for _, e, _ in EXAMPLES if "memberOf" not in e] + [s for s, _, _ in OPERATORS] + [
    "agentConnected == true", "registeredAt >= 2018-03-01", "attribute:chips > 2",
    "task:group != database", "attribute:stack !~ pr.*", "attribute:team == 'ml platform'",
]
OPTIONS = st.builds(CqlOptions, st.booleans(), st.booleans(), st.booleans())


def _expressions() -> st.SearchStrategy[str]:
    return st.recursive(
        st.sampled_from(ATOMS),
        lambda inner: st.one_of(
            st.tuples(inner, inner).map(lambda p: f"({p[0]}) and ({p[1]})"),
            st.tuples(inner, inner).map(lambda p: f"{p[0]} || {p[1]}"),
            inner.map(lambda e: f"not({e})"),
        ),
        max_leaves=6,
    )


def _mask(expression: str, options: CqlOptions, table: FakeTable | None = None) -> np.ndarray:
    return parse(expression, options).evaluate(FakeTable() if table is None else table)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_expressions(), OPTIONS)
def test_not_is_the_complement(expression: str, options: CqlOptions) -> None:
    assert np.array_equal(_mask(f"not({expression})", options), ~_mask(expression, options))


@settings(max_examples=150, deadline=None)
@given(_expressions(), _expressions(), OPTIONS)
def test_and_or_are_elementwise(a: str, b: str, options: CqlOptions) -> None:
    ma, mb = _mask(a, options), _mask(b, options)
    assert np.array_equal(_mask(f"({a}) and ({b})", options), ma & mb)
    assert np.array_equal(_mask(f"({a}) or ({b})", options), ma | mb)


@settings(max_examples=150, deadline=None)
@given(_expressions(), OPTIONS)
def test_canonical_form_round_trips_and_caching_changes_nothing(expression: str,
                                                                options: CqlOptions) -> None:
    query = parse(expression, options)
    again = parse(str(query), options)
    assert str(again) == str(query)
    plain = query.evaluate(FakeTable())
    assert np.array_equal(again.evaluate(FakeTable()), plain)
    cache: dict = {}
    table = CodedTable()
    assert np.array_equal(query.evaluate(table, cache), plain)
    assert np.array_equal(query.evaluate(table, cache), plain)


GARBAGE_ALPHABET = st.sampled_from([
    *"abcnotrdixs:._-'\"[](),!=<>~&| \\^$*+?{}0123456789@/\t",
    "attribute:", "task:group", " and ", " or ", "not(", "==", "=~", " in ", "[", "]", "agentVersion",
    "registeredAt", "runningTasksCount", "agentConnected", "ec2InstanceId", " exists", "!exists", "'", "memberOf(",
])


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.text(max_size=120), st.lists(GARBAGE_ALPHABET, max_size=40).map("".join)), OPTIONS)
def test_garbage_gives_only_query_errors(text: str, options: CqlOptions) -> None:
    try:
        query = parse(text, options)
    except QueryError as error:
        assert error.column is None or 1 <= error.column <= max(len(text), 1) + 1
        return
    assert query.evaluate(FakeTable(), {}).shape == (7,)

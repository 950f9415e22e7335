"""The .env parser, compose variable references and env coverage."""

import pytest

from templates_engine import (
    ComposeFileError,
    EnvFileError,
    compose_variables,
    env_coverage,
    parse_env,
    render,
    with_env_value,
)
from templates_engine.envfile import VariableRef

from .helpers import context_for

pytestmark = []


def test_parse_env_edge_cases():
    text = (
        "# a comment\n"
        "\n"
        "   \n"
        "PLAIN=value\n"
        "export EXPORTED=yes\n"
        "  SPACED  =  around  \n"
        "INLINE=value # a comment\n"
        "HASH=pass#word\n"
        "EMPTY=\n"
        "SINGLE='lit $X # kept \\n'  # comment\n"
        'DOUBLE="esc \\"q\\" \\\\ \\n end"\n'
        'MULTI="line one\n'
        'line two"\n'
        "AFTER_MULTI=1\n"
        "URL=postgres://u:p@db:5432/x?a=b\n"
        "WINDOWS=crlf\r\n"
        "DUP=first\n"
        "DUP=second\n"
        "dotted.key-name=ok\n"
    )
    assert parse_env(text) == {
        "PLAIN": "value",
        "EXPORTED": "yes",
        "SPACED": "around",
        "INLINE": "value",
        "HASH": "pass#word",
        "EMPTY": "",
        "SINGLE": "lit $X # kept \\n",
        "DOUBLE": 'esc "q" \\ \n end',
        "MULTI": "line one\nline two",
        "AFTER_MULTI": "1",
        "URL": "postgres://u:p@db:5432/x?a=b",
        "WINDOWS": "crlf",
        "DUP": "second",
        "dotted.key-name": "ok",
    }


def test_parse_env_without_trailing_newline():
    assert parse_env("A=1\nB='two'") == {"A": "1", "B": "two"}


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("A=1\nNO_EQUALS\n", 2),
        ("A=1\n\nB='open\nC=2\n", 3),
        ('A="x" trailing\n', 1),
        ("=value\n", 1),
        ('A="two\nlines"\nbad line\n', 3),
    ],
)
def test_parse_env_reports_the_line_of_a_bad_entry(text, line):
    with pytest.raises(EnvFileError, match=f"line {line}:"):
        parse_env(text)


def test_parse_env_errors_do_not_echo_long_values():
    with pytest.raises(EnvFileError) as caught:
        parse_env("this line is a very long secret-looking thing without equals\n")
    assert "secret-looking" not in caught.value.message


COMPOSE = """
services:
  app:
    image: "registry/app:${IMAGE_TAG:-v1}"
    command: ["sh", "-c", "echo $$HOME $${ESCAPED} $$$$"]   # ${IN_COMMENT}
    environment:
      PLAIN: ${PLAIN}
      BARE: $BARE_VAR/suffix
      DEFAULT_COLON: ${DC:-x}
      DEFAULT_DASH: ${DD-x}
      REQUIRED_COLON: ${RC:?must be set}
      REQUIRED_Q: ${RQ?must be set}
      ALTERNATIVE: ${ALT:+yes}
      NESTED: ${OUTER:-${INNER}}
      TWICE: ${PLAIN}-${PLAIN:-again}
      LONE: "costs 5 $ "
"""


def test_compose_variables_finds_every_form():
    refs = compose_variables(COMPOSE)
    assert [(r.name, r.operator, r.nested) for r in refs] == [
        ("IMAGE_TAG", ":-", False),
        ("PLAIN", "", False),
        ("BARE_VAR", "", False),
        ("DC", ":-", False),
        ("DD", "-", False),
        ("RC", ":?", False),
        ("RQ", "?", False),
        ("ALT", ":+", False),
        ("OUTER", ":-", False),
        ("INNER", "", True),
        ("PLAIN", ":-", False),
    ]
    names = {r.name for r in refs}
    assert "HOME" not in names and "ESCAPED" not in names and "IN_COMMENT" not in names


def test_required_and_defaulted_references():
    assert VariableRef("A").required and VariableRef("A", "?").required and VariableRef("A", ":?").required
    assert not VariableRef("A", ":-").required and not VariableRef("A", ":+").required
    assert not VariableRef("A", "", nested=True).required


@pytest.mark.parametrize("value", ["${}", "${1ABC}", "${A:x}", "${A:-unclosed", "${A"])
def test_invalid_references_are_errors(value):
    with pytest.raises(ComposeFileError):
        compose_variables(f"services:\n  a:\n    image: '{value}'\n")


def test_compose_variables_needs_yaml():
    with pytest.raises(ComposeFileError, match="not valid YAML"):
        compose_variables("services: [unclosed\n")


def test_coverage_names_a_missing_required_variable_and_blocks():
    env = {"PLAIN": "1", "BARE_VAR": "2", "RC": "3"}
    coverage = env_coverage(COMPOSE, env)
    assert coverage.required_missing == ["RQ"]
    assert coverage.blocked
    assert "RQ" in coverage.format() and "required" in coverage.format()


def test_coverage_does_not_count_a_defaulted_variable_as_missing():
    env = {"PLAIN": "1", "BARE_VAR": "2", "RC": "3", "RQ": "4"}
    coverage = env_coverage(COMPOSE, env)
    assert coverage.required_missing == []
    assert not coverage.blocked
    assert coverage.defaulted_missing == ["ALT", "DC", "DD", "IMAGE_TAG", "INNER", "OUTER"]
    assert coverage.defined == ["BARE_VAR", "PLAIN", "RC", "RQ"]


def test_an_empty_value_fails_only_the_colon_question_form():
    env = {"PLAIN": "", "BARE_VAR": "", "RC": "", "RQ": ""}
    assert env_coverage(COMPOSE, env).required_missing == ["RC"]


def test_also_required_adds_the_manifest_variables():
    env = {"PLAIN": "1", "BARE_VAR": "2", "RC": "3", "RQ": "4"}
    coverage = env_coverage(COMPOSE, env, also_required=["COMPOSE_PROJECT_NAME", "DC"])
    assert coverage.required_missing == ["COMPOSE_PROJECT_NAME", "DC"]


def test_coverage_of_a_registered_tenant_against_the_campaign_set(campaign):
    compose = render(campaign, context_for(campaign), include_env=False)["docker-compose.yml"].content.decode()
    hand_written = parse_env("COMPOSE_PROJECT_NAME=acme\nDOMAIN=acme.org\nHTTP_PORT=8080\nPOSTGRES_PASSWORD=x\n")
    coverage = env_coverage(compose, hand_written, also_required=campaign.required_env)
    assert coverage.required_missing == ["DJANGO_SECRET_KEY", "GRAFANA_ADMIN_PASSWORD", "REDIS_PASSWORD"]
    assert "IMAGE_TAG" in coverage.defaulted_missing


# --- editing one value (Quick upgrade's IMAGE_TAG) -------------------------------------------------------


def test_with_env_value_changes_only_the_value_compose_reads():
    text = "# by install.sh\nIMAGE_TAG=v1\nA='x y'  # quoted\n\nexport IMAGE_TAG=v3  # pinned by ops\r\nB=\"z\"\n"
    new, lines = with_env_value(text, "IMAGE_TAG", "v2")
    assert new == text.replace("IMAGE_TAG=v3  # pinned", "IMAGE_TAG=v2  # pinned")
    assert lines == [2, 5] and parse_env(new)["IMAGE_TAG"] == "v2"


def test_with_env_value_keeps_quotes_fills_an_empty_value_and_appends_when_absent():
    assert with_env_value("IMAGE_TAG='v1' # q\n", "IMAGE_TAG", "v2")[0] == "IMAGE_TAG='v2' # q\n"
    assert with_env_value("IMAGE_TAG=\nA=1\n", "IMAGE_TAG", "v2")[0] == "IMAGE_TAG=v2\nA=1\n"
    assert with_env_value("A=1", "IMAGE_TAG", "v2") == ("A=1\nIMAGE_TAG=v2\n", [])
    assert with_env_value("A=1\r\n", "IMAGE_TAG", "v2")[0] == "A=1\r\nIMAGE_TAG=v2\r\n"


def test_with_env_value_refuses_a_value_that_would_need_quoting():
    with pytest.raises(EnvFileError):
        with_env_value("A=1\n", "IMAGE_TAG", "v2 # x")

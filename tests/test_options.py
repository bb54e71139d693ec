import pytest

from errlink._options import build_options
from errlink._wire.dsn import Dsn


def test_defaults_without_dsn_are_disabled() -> None:
    options = build_options(None, {}, env={})
    assert options.dsn is None
    assert not options.enabled
    assert options.sample_rate == 1.0
    assert options.max_breadcrumbs == 100
    assert options.max_value_length == 1024
    assert options.queue_size == 1000
    assert options.queue_max_bytes == 32 * 1024 * 1024
    assert options.include_locals is True
    assert options.send_default_pii is False


def test_dsn_environment_and_release_come_from_errlink_variables() -> None:
    env = {
        "ERRLINK_DSN": "http://k@h/1",
        "ERRLINK_ENVIRONMENT": "staging",
        "ERRLINK_RELEASE": "1.2.3",
        "SENTRY_DSN": "http://other@h/2",
    }
    options = build_options(None, {}, env=env)
    assert options.dsn == Dsn.parse("http://k@h/1")
    assert options.environment == "staging"
    assert options.release == "1.2.3"


def test_sentry_variables_are_a_fallback_for_migrating_users() -> None:
    env = {"SENTRY_DSN": "http://s@h/2", "SENTRY_ENVIRONMENT": "prod", "SENTRY_RELEASE": "9"}
    options = build_options(None, {}, env=env)
    assert options.dsn is not None
    assert options.dsn.public_key == "s"
    assert (options.environment, options.release) == ("prod", "9")


def test_arguments_win_over_the_environment() -> None:
    env = {"ERRLINK_DSN": "http://k@h/1", "ERRLINK_ENVIRONMENT": "staging"}
    options = build_options("http://arg@h/5", {"environment": "prod"}, env=env)
    assert options.dsn is not None
    assert options.dsn.project_id == "5"
    assert options.environment == "prod"


def test_an_explicit_empty_dsn_disables_even_with_the_variable_set() -> None:
    assert build_options("", {}, env={"ERRLINK_DSN": "http://k@h/1"}).dsn is None


def test_invalid_dsn_from_the_environment_fails_at_construction() -> None:
    with pytest.raises(ValueError, match="invalid dsn"):
        build_options(None, {}, env={"ERRLINK_DSN": "nonsense"})


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"sample_rate": 1.5}, ValueError, "'sample_rate' must be between 0.0 and 1.0"),
        ({"sample_rate": -0.1}, ValueError, "'sample_rate' must be between"),
        ({"sample_rate": float("nan")}, ValueError, "'sample_rate'"),
        ({"sample_rate": "1"}, TypeError, "'sample_rate' must be a number"),
        ({"queue_size": 0}, ValueError, "'queue_size' must be a positive integer"),
        ({"queue_size": 2.5}, TypeError, "'queue_size' must be an integer"),
        ({"queue_max_bytes": 1000}, ValueError, "'queue_max_bytes' must be at least 65536"),
        ({"queue_max_bytes": "32MB"}, TypeError, "'queue_max_bytes' must be an integer"),
        ({"queue_max_bytes": True}, TypeError, "'queue_max_bytes' must be an integer"),
        ({"max_breadcrumbs": -1}, ValueError, "'max_breadcrumbs' must be zero or more"),
        ({"max_value_length": True}, TypeError, "'max_value_length' must be an integer"),
        ({"http_timeout": -1}, ValueError, "'http_timeout' must be at least 0.0"),
        ({"before_send": "nope"}, TypeError, "'before_send' must be callable"),
        ({"before_breadcrumb": 1}, TypeError, "'before_breadcrumb' must be callable"),
        ({"include_locals": "yes"}, TypeError, "'include_locals' must be True or False"),
        ({"ignore_errors": KeyError}, TypeError, "'ignore_errors' must be a list"),
        ({"ignore_errors": [42]}, TypeError, "'ignore_errors' holds 42"),
        ({"in_app_include": "myapp"}, TypeError, "'in_app_include' must be a list of strings"),
        ({"max_request_body_size": "huge"}, ValueError, "'max_request_body_size' must be one of"),
        ({"ca_certs": "/nonexistent/ca.pem"}, ValueError, "'ca_certs' must name an existing file"),
        ({"tags": ["a"]}, TypeError, "'tags' must be a mapping"),
        ({"environmnet": "prod"}, TypeError, "unknown option"),
    ],
)
def test_bad_options_fail_naming_the_option_and_what_is_allowed(
    options: dict[str, object], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        build_options("http://k@h/1", options, env={})


def test_valid_options_are_normalized() -> None:
    options = build_options(
        "http://k@h/1",
        {
            "sample_rate": 1,
            "ignore_errors": [KeyError, "myapp.Expected"],
            "in_app_include": ["myapp"],
            "tags": {"region": "eu", "shard": 3},
        },
        env={},
    )
    assert options.sample_rate == 1.0
    assert options.ignore_errors == (KeyError, "myapp.Expected")
    assert options.in_app_include == ("myapp",)
    assert options.tags == {"region": "eu", "shard": "3"}

import os
import re
import subprocess
import sys
from collections.abc import Iterator

import pytest

import errlink
from errlink import ConfigurationWarning
from errlink._options import build_options
from errlink._wire.dsn import Dsn

NO_TRACING = "not supported: errlink reports errors, and has no tracing or profiling"
HIDDEN_ENV_DSN = (
    r"the DSN given in code wins; \$ERRLINK_DSN is ignored \(leave dsn unset to use it\)"
)


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


def test_arguments_win_over_the_environment_and_a_hidden_dsn_is_a_warning() -> None:
    env = {"ERRLINK_DSN": "http://k@h/1", "ERRLINK_ENVIRONMENT": "staging"}
    with pytest.warns(ConfigurationWarning, match=HIDDEN_ENV_DSN):
        options = build_options("http://arg@h/5", {"environment": "prod"}, env=env)
    assert options.dsn is not None
    assert options.dsn.project_id == "5"
    assert options.environment == "prod"
    with pytest.warns(ConfigurationWarning, match=r"\$SENTRY_DSN is ignored"):
        build_options(Dsn.parse("http://arg@h/5"), {}, env={"SENTRY_DSN": "http://k@h/1"})


def test_an_explicit_empty_dsn_disables_even_with_the_variable_set_and_says_so() -> None:
    with pytest.warns(ConfigurationWarning, match=r"the empty DSN given in code turns errlink off"):
        assert build_options("", {}, env={"ERRLINK_DSN": "http://k@h/1"}).dsn is None


def test_the_same_dsn_in_the_argument_and_the_environment_is_no_warning() -> None:
    env = {"ERRLINK_DSN": "http://k@h/1"}  # the suite turns any warning into an error
    assert build_options(" http://k@h/1", {}, env=env).dsn == Dsn.parse("http://k@h/1")
    assert build_options("http://k@h/1/", {}, env=env).dsn == Dsn.parse("http://k@h/1")
    assert build_options(Dsn.parse("http://k@h/1"), {}, env=env).dsn is not None


@pytest.fixture
def env_dsn(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.delenv("SENTRY_DSN", raising=False)
    monkeypatch.setenv("ERRLINK_DSN", "http://from-env@127.0.0.1:9/1")
    yield "http://from-env@127.0.0.1:9/1"
    errlink.close(timeout=1)


async def test_the_hidden_dsn_warning_points_at_the_line_that_made_the_client(
    env_dsn: str,
) -> None:
    with pytest.warns(ConfigurationWarning, match=HIDDEN_ENV_DSN) as async_face:
        await errlink.AsyncClient("http://arg@127.0.0.1:9/2").aclose()
    with pytest.warns(ConfigurationWarning, match=HIDDEN_ENV_DSN) as sync_face:
        errlink.Client("http://arg@127.0.0.1:9/2").close(timeout=1)
    with pytest.warns(ConfigurationWarning, match="empty DSN") as init_face:
        errlink.init("")
    for record in (*async_face, *sync_face, *init_face):
        assert record.filename == __file__


def test_the_hidden_dsn_warning_reaches_stderr_once_by_default() -> None:
    script = "import errlink\nfor _ in range(3):\n    errlink.Client('')\n"
    env = {key: value for key, value in os.environ.items() if key != "PYTHONWARNINGS"}
    env["ERRLINK_DSN"] = "http://from-env@127.0.0.1:9/1"
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == (
        "<string>:3: ConfigurationWarning: errlink: the empty DSN given in code turns errlink "
        "off; $ERRLINK_DSN is ignored (leave dsn unset to use it)\n"
    )


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
        (
            {"max_request_body_size": "never"},
            ValueError,
            r"not 'never' \(sentry-sdk's 'never' is 'none' in errlink\)",
        ),
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


@pytest.mark.parametrize(
    ("name", "hint"),
    [
        ("enviroment", "did you mean 'environment'?"),
        ("sample_rat", "did you mean 'sample_rate'?"),
        ("excepthok", "did you mean 'excepthook', an option of errlink.init() only?"),
        ("include_local_variables", "sentry-sdk's name for errlink's 'include_locals'"),
        ("transport_queue_size", "sentry-sdk's name for errlink's 'queue_size'"),
        ("https_proxy", "sentry-sdk's name for errlink's 'http_proxy'"),
        ("integrations", "an option of errlink.init() only"),
        ("default_integrations", "an option of errlink.init() only"),
        ("logging_event_level", "an option of errlink.init() only"),
        ("traces_sample_rate", NO_TRACING),
        ("profiles_sample_rate", NO_TRACING),
        ("enable_tracing", NO_TRACING),
        ("error_sampler", "not supported: use sample_rate, or a before_send that returns None"),
    ],
)
def test_an_unknown_option_says_what_was_meant(name: str, hint: str) -> None:
    expected = rf"^unknown option '{name}' \({re.escape(hint)}\); allowed: "
    with pytest.raises(TypeError, match=expected):
        build_options("http://k@h/1", {name: 1}, env={})


def test_the_allowed_names_include_the_init_only_options() -> None:
    with pytest.raises(TypeError) as raised:
        build_options(None, {"colour": "blue", "enviroment": "x"}, env={})
    message = str(raised.value)
    assert message.startswith(
        "unknown options 'colour', 'enviroment' (did you mean 'environment'?); allowed: "
    )
    allowed = message.split("; allowed: ")[1].split(", ")
    assert "excepthook (init() only)" in allowed
    assert "integrations (init() only)" in allowed
    assert "logging_breadcrumb_level (init() only)" in allowed
    assert "environment" in allowed


async def test_every_face_gives_the_hint() -> None:
    with pytest.raises(TypeError, match=r"'enviroment' \(did you mean 'environment'\?\)"):
        errlink.AsyncClient("http://k@h/1", enviroment="prod")  # type: ignore[call-arg]
    with pytest.raises(TypeError, match=r"'enviroment' \(did you mean 'environment'\?\)"):
        errlink.Client("http://k@h/1", enviroment="prod")  # type: ignore[call-arg]
    with pytest.raises(TypeError, match=r"'traces_sample_rate' \(not supported"):
        errlink.init("http://k@h/1", traces_sample_rate=1.0)  # type: ignore[call-arg]
    assert errlink.sync.default_client() is None

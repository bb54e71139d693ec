import pytest

from errlink._wire.dsn import Dsn


def test_full_dsn_gives_envelope_url_and_auth_header() -> None:
    dsn = Dsn.parse("https://pub:sec@o1.ingest.example.com:8443/sub/path/42")
    assert dsn.envelope_url == "https://o1.ingest.example.com:8443/sub/path/api/42/envelope/"
    assert dsn.store_url == "https://o1.ingest.example.com:8443/sub/path/api/42/store/"
    assert dsn.auth_header() == (
        "Sentry sentry_version=7, sentry_key=pub, sentry_client=errlink/0.1.0, sentry_secret=sec"
    )


def test_minimal_dsn_without_secret_or_port() -> None:
    dsn = Dsn.parse("http://abc@localhost/7")
    assert dsn.envelope_url == "http://localhost/api/7/envelope/"
    assert "sentry_secret" not in dsn.auth_header()
    assert dsn.port is None
    assert dsn.secret_key is None


def test_ipv6_host() -> None:
    dsn = Dsn.parse("http://k@[::1]:9000/3")
    assert dsn.envelope_url == "http://[::1]:9000/api/3/envelope/"


def test_text_forms_never_show_the_secret() -> None:
    dsn = Dsn.parse("https://pub:topsecret@sentry.example.com/1")
    assert "topsecret" not in str(dsn)
    assert "topsecret" not in repr(dsn)
    assert dsn.to_string(with_secret=True) == "https://pub:topsecret@sentry.example.com/1"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("ftp://k@h/1", "scheme must be http or https"),
        ("https://h/1", "missing public key"),
        ("https://k@h/", "missing project id"),
        ("https://k@h", "missing project id"),
        ("https://k:topsecret@h:99999/1", "bad port"),
        ("https://k:topsecret@h:port/1", "bad port"),
        ("https://k:topsecret@/1", "missing host"),
        ("https://k@h/1?x=1", "unexpected query"),
        ("", "empty"),
        ("not a dsn", "scheme must be http or https"),
    ],
)
def test_malformed_dsn_is_rejected_naming_the_problem(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem) as info:
        Dsn.parse(text)
    assert "topsecret" not in str(info.value)


def test_non_string_dsn_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="must be a string"):
        Dsn.parse(42)  # type: ignore[arg-type]

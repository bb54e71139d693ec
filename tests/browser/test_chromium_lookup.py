"""How the browser tests find Chromium: without it they are skipped with the reason, or fail
when CI requires the browser (`ERRLINK_REQUIRE_BROWSER=1`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser._chromium import chromium_paths


@pytest.fixture(autouse=True)
def _no_browser_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in ("ERRLINK_CHROMIUM", "ERRLINK_CHROMEDRIVER", "ERRLINK_REQUIRE_BROWSER"):
        monkeypatch.delenv(variable, raising=False)


def executables(directory: Path, *names: str) -> Path:
    directory.mkdir()
    for name in names:
        path = directory / name
        path.write_text("#!/bin/sh\n")
        path.chmod(0o755)
    return directory


def test_both_are_found_on_the_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(executables(tmp_path / "bin", "chromium", "chromedriver")))
    assert chromium_paths() == (str(tmp_path / "bin/chromium"), str(tmp_path / "bin/chromedriver"))


def test_without_chromium_the_test_is_skipped_with_the_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(executables(tmp_path / "bin", "chromedriver")))
    with pytest.raises(pytest.skip.Exception) as skipped:
        chromium_paths()
    assert str(skipped.value) == (
        "BROWSER TEST NOT RUN: no chromium on the PATH (Debian package chromium; or set "
        "ERRLINK_CHROMIUM). As root, `bash scripts/test.sh` installs them."
    )


def test_a_setting_that_names_no_executable_is_the_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(executables(tmp_path / "bin", "chromium", "chromedriver")))
    monkeypatch.setenv("ERRLINK_CHROMEDRIVER", str(tmp_path / "missing"))
    with pytest.raises(pytest.skip.Exception, match=r"ERRLINK_CHROMEDRIVER=\S+missing is not an"):
        chromium_paths()


def test_when_the_browser_is_required_its_absence_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(executables(tmp_path / "bin")))
    monkeypatch.setenv("ERRLINK_REQUIRE_BROWSER", "1")
    with pytest.raises(pytest.fail.Exception, match=r"no chromium.*no chromedriver.*makes this a"):
        chromium_paths()

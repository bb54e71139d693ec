from __future__ import annotations

import importlib
import json
import os
import sys
import textwrap
import zipfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

import pytest

from errlink._capture.source import SourceCache
from errlink._capture.stacktrace import FrameExtractor, Meta

try:
    from tests import _stack_helpers as helpers
    from tests._stack_relay import assert_relay_accepts
except ImportError:
    import _stack_helpers as helpers  # type: ignore[no-redef]
    from _stack_relay import assert_relay_accepts  # type: ignore[no-redef]


def repr_vars(mapping: Mapping[str, object], meta: Meta) -> dict[str, Any]:
    return {key: repr(value)[:100] for key, value in mapping.items()}


def traceback_of(func: Any, *args: Any) -> TracebackType:
    try:
        func(*args)
    except Exception as exc:
        tb = exc.__traceback__
    else:
        raise AssertionError("expected an exception")
    assert tb is not None
    return tb


def assert_valid(stacktrace: dict[str, Any], meta: Meta | None = None) -> None:
    values = [{"type": "Error", "value": "x", "stacktrace": stacktrace}]
    values_meta = {"0": {"stacktrace": meta}} if meta else None
    assert_relay_accepts(values, values_meta)


@pytest.fixture
def extractor() -> FrameExtractor:
    return FrameExtractor(vars_normalizers=lambda: repr_vars, source_cache=SourceCache())


@pytest.fixture
def modules_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh sys.path entry; modules imported from it are forgotten afterwards."""
    root = tmp_path / "importroot"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    yield root
    for name, module in list(sys.modules.items()):
        if str(getattr(module, "__file__", None) or "").startswith(str(root)):
            del sys.modules[name]


def write_module(directory: Path, name: str, source: str) -> Path:
    path = directory / f"{name}.py"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(source), encoding="utf-8")
    importlib.invalidate_caches()
    return path


# -- frames ---------------------------------------------------------------------------------------


def test_frames_are_oldest_first_with_source_and_locals(extractor: FrameExtractor) -> None:
    tb = traceback_of(helpers.Account().withdraw, 100)
    meta: Meta = {}
    stacktrace = extractor.from_traceback(tb, meta)

    frames = stacktrace["frames"]
    assert [frame["function"] for frame in frames] == [
        "traceback_of",
        "Account.withdraw",
    ]
    frame = frames[-1]
    line = helpers.marker_line("withdraw-raise")
    source = Path(helpers.__file__).read_text(encoding="utf-8").split("\n")
    assert frame == {
        "filename": frame["filename"],
        "abs_path": os.path.abspath(helpers.__file__),
        "function": "Account.withdraw",
        "module": helpers.__name__,
        "lineno": line,
        "pre_context": source[line - 6 : line - 1],
        "context_line": source[line - 1],
        "post_context": source[line : line + 5],
        "in_app": True,
        "vars": {
            "self": repr(frame_self(tb)),
            "amount": "100",
            "balance": "10",
        },
    }
    assert frame["filename"].endswith("_stack_helpers.py")
    assert not os.path.isabs(frame["filename"])
    assert "marker: withdraw-raise" in frame["context_line"]
    assert not any(text.endswith("\n") for text in frame["pre_context"] + frame["post_context"])
    assert "frames_omitted" not in stacktrace
    assert meta == {}
    assert_valid(stacktrace)


def frame_self(tb: TracebackType) -> object:
    while tb.tb_next is not None:
        tb = tb.tb_next
    return tb.tb_frame.f_locals["self"]


def test_filename_is_relative_to_the_longest_sys_path_entry(
    modules_dir: Path, monkeypatch: pytest.MonkeyPatch, extractor: FrameExtractor
) -> None:
    write_module(modules_dir / "shop", "__init__", "")
    write_module(modules_dir / "shop" / "billing", "__init__", "")
    path = write_module(
        modules_dir / "shop" / "billing",
        "charge",
        """
        def charge():
            raise ValueError("declined")
        """,
    )
    monkeypatch.syspath_prepend(str(modules_dir.parent))  # a shorter prefix of the same file
    module = importlib.import_module("shop.billing.charge")

    frame = extractor.from_traceback(traceback_of(module.charge), {})["frames"][-1]

    assert frame["filename"] == os.path.join("shop", "billing", "charge.py")
    assert frame["abs_path"] == str(path)
    assert frame["module"] == "shop.billing.charge"
    assert frame["context_line"] == '    raise ValueError("declined")'


def test_filename_outside_sys_path_falls_back_to_the_module_path(
    tmp_path: Path, extractor: FrameExtractor
) -> None:
    path = tmp_path / "elsewhere" / "pkg" / "mod.py"
    path.parent.mkdir(parents=True)
    path.write_text("def boom():\n    raise KeyError('k')\n", encoding="utf-8")
    namespace: dict[str, Any] = {"__name__": "pkg.mod"}
    exec(compile(path.read_text(), str(path), "exec"), namespace)

    frame = extractor.from_traceback(traceback_of(namespace["boom"]), {})["frames"][-1]

    assert frame["filename"] == os.path.join("pkg", "mod.py")
    assert frame["abs_path"] == str(path)
    assert frame["context_line"] == "    raise KeyError('k')"


def test_pseudo_files_keep_their_name_and_have_no_context(extractor: FrameExtractor) -> None:
    namespace: dict[str, Any] = {"__name__": "generated"}
    exec(compile("def boom():\n    raise KeyError('k')\n", "<string>", "exec"), namespace)

    stacktrace = extractor.from_traceback(traceback_of(namespace["boom"]), {})
    frame = stacktrace["frames"][-1]

    assert frame["filename"] == frame["abs_path"] == "<string>"
    assert frame["lineno"] == 2
    assert frame["in_app"] is True
    assert {"pre_context", "context_line", "post_context"}.isdisjoint(frame)
    assert_valid(stacktrace)


def test_missing_and_vanished_files_give_frames_without_context(
    modules_dir: Path, extractor: FrameExtractor
) -> None:
    namespace: dict[str, Any] = {"__name__": "ghost"}
    exec(compile("def boom():\n    raise KeyError('k')\n", "/no/such/ghost.py", "exec"), namespace)
    ghost = extractor.from_traceback(traceback_of(namespace["boom"]), {})["frames"][-1]

    path = write_module(modules_dir, "vanishing", "def boom():\n    raise KeyError('k')\n")
    tb = traceback_of(importlib.import_module("vanishing").boom)
    path.unlink()
    vanished = extractor.from_traceback(tb, {})["frames"][-1]

    for frame in (ghost, vanished):
        assert frame["lineno"] == 2
        assert {"pre_context", "context_line", "post_context"}.isdisjoint(frame)


def test_long_source_lines_are_cut(modules_dir: Path, extractor: FrameExtractor) -> None:
    long_name = "x" * 400
    write_module(modules_dir, "longline", f"def boom():\n    raise KeyError('{long_name}')\n")

    frame = extractor.from_traceback(traceback_of(importlib.import_module("longline").boom), {})
    context_line = frame["frames"][-1]["context_line"]

    assert len(context_line) == 200
    assert context_line.startswith("    raise KeyError('xxx")
    assert context_line.endswith("...")


def test_methods_are_named_by_qualified_name(extractor: FrameExtractor) -> None:
    frames = extractor.from_traceback(traceback_of(helpers.Account().withdraw, 50), {})["frames"]
    expected = "Account.withdraw" if sys.version_info >= (3, 11) else "withdraw"
    assert frames[-1]["function"] == expected


# -- source cache ---------------------------------------------------------------------------------


def test_source_cache_rereads_a_file_whose_mtime_or_size_changed(tmp_path: Path) -> None:
    path = tmp_path / "edited.py"
    path.write_text("a = 1\nb = 2\nc = 3\n", encoding="utf-8")
    cache = SourceCache(revalidate_after=0)

    assert cache.context(str(path), 2, lines=1) == (["a = 1"], "b = 2", ["c = 3"])
    path.write_text("a = 1\nb = 'edited'\nc = 3\n", encoding="utf-8")
    assert cache.context(str(path), 2, lines=1) == (["a = 1"], "b = 'edited'", ["c = 3"])


def test_frames_show_the_edited_source_line(modules_dir: Path) -> None:
    path = write_module(modules_dir, "editable", "def boom():\n    raise KeyError('k')\n")
    tb = traceback_of(importlib.import_module("editable").boom)
    extractor = FrameExtractor(vars_normalizers=None, source_cache=SourceCache(revalidate_after=0))

    before = extractor.from_traceback(tb, {})["frames"][-1]
    path.write_text("def boom():\n    raise KeyError('the new line')\n", encoding="utf-8")
    after = extractor.from_traceback(tb, {})["frames"][-1]

    assert before["context_line"] == "    raise KeyError('k')"
    assert after["context_line"] == "    raise KeyError('the new line')"


def test_source_cache_skips_the_stat_within_the_revalidation_window(tmp_path: Path) -> None:
    path = tmp_path / "stable.py"
    path.write_text("first\n", encoding="utf-8")
    cache = SourceCache(revalidate_after=3600)

    assert cache.context(str(path), 1)[1] == "first"
    path.write_text("second line\n", encoding="utf-8")
    assert cache.context(str(path), 1)[1] == "first"


def test_source_cache_is_bounded_least_recently_used_first(tmp_path: Path) -> None:
    paths = []
    for name in ("a", "b", "c"):
        paths.append(tmp_path / f"{name}.py")
        paths[-1].write_text(f"{name} = 1\n", encoding="utf-8")
    cache = SourceCache(max_files=2, revalidate_after=3600)
    for path in paths:
        assert cache.context(str(path), 1)[1] is not None
    for path in paths:
        path.unlink()

    assert cache.context(str(paths[0]), 1) == ([], None, [])  # evicted, then gone from disk
    assert cache.context(str(paths[2]), 1) == ([], "c = 1", [])  # still cached


def test_source_cache_handles_line_numbers_out_of_range_and_odd_newlines(tmp_path: Path) -> None:
    path = tmp_path / "odd.py"
    path.write_bytes(b"one\r\ntwo\x0cstill two\rthree\n")
    cache = SourceCache()

    assert cache.context(str(path), 3) == (["one", "two\x0cstill two"], "three", [])
    assert cache.context(str(path), 0) == ([], None, [])
    assert cache.context(str(path), 4) == ([], None, [])


def test_source_cache_honours_the_encoding_cookie(tmp_path: Path) -> None:
    path = tmp_path / "latin.py"
    path.write_bytes("# -*- coding: latin-1 -*-\nname = 'café'\n".encode("latin-1"))
    assert SourceCache().context(str(path), 2)[1] == "name = 'café'"


def test_zip_imports_get_source_from_the_loader(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, extractor: FrameExtractor
) -> None:
    archive = tmp_path / "bundle.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("zipped_mod_x.py", "def boom():\n    raise KeyError('zipped')\n")
    monkeypatch.syspath_prepend(str(archive))
    try:
        module = importlib.import_module("zipped_mod_x")
        stacktrace = extractor.from_traceback(traceback_of(module.boom), {})
    finally:
        sys.modules.pop("zipped_mod_x", None)

    frame = stacktrace["frames"][-1]
    assert frame["abs_path"] == os.path.join(str(archive), "zipped_mod_x.py")
    assert frame["filename"] == "zipped_mod_x.py"
    assert frame["context_line"] == "    raise KeyError('zipped')"
    assert frame["pre_context"] == ["def boom():"]


class _RaisingLoader:
    def get_source(self, name: str) -> str:
        raise ImportError(name)


class _BytesLoader:
    def get_source(self, name: str) -> bytes:
        return b"not text"


@pytest.mark.parametrize("loader", [_RaisingLoader(), _BytesLoader(), object(), None])
def test_weird_loaders_give_no_context(loader: object) -> None:
    module_globals = {"__loader__": loader, "__name__": "weird"}
    assert SourceCache().context("/no/such/weird.py", 1, module_globals) == ([], None, [])


# -- in_app ---------------------------------------------------------------------------------------


def test_stdlib_frames_are_not_in_app(extractor: FrameExtractor) -> None:
    stacktrace = extractor.from_traceback(traceback_of(json.loads, "{"), {})
    library = [frame for frame in stacktrace["frames"] if frame["module"].startswith("json")]

    assert library
    assert all(frame["in_app"] is False for frame in library)
    assert library[-1]["filename"] == os.path.join("json", "decoder.py")
    assert stacktrace["frames"][0]["in_app"] is True  # this test module


def test_site_packages_frames_are_not_in_app(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, extractor: FrameExtractor
) -> None:
    site = tmp_path / "lib" / "site-packages"
    write_module(site, "vendored_lib_x", "def boom():\n    raise KeyError('vendor')\n")
    monkeypatch.syspath_prepend(str(site))
    try:
        module = importlib.import_module("vendored_lib_x")
        frame = extractor.from_traceback(traceback_of(module.boom), {})["frames"][-1]
    finally:
        sys.modules.pop("vendored_lib_x", None)

    assert frame["filename"] == "vendored_lib_x.py"
    assert frame["in_app"] is False


@pytest.fixture
def packages(modules_dir: Path) -> dict[str, Any]:
    """myapp.core, myapp.vendor.lib and myapplication, each with a raising `boom`."""
    body = "def boom():\n    raise KeyError('k')\n"
    for package in ("myapp", "myapp/vendor", "myapplication"):
        write_module(modules_dir / package, "__init__", body)
    write_module(modules_dir / "myapp", "core", body)
    write_module(modules_dir / "myapp" / "vendor", "lib", body)
    names = ("myapp.core", "myapp.vendor.lib", "myapplication")
    return {name: importlib.import_module(name) for name in names}


def in_app_of(extractor: FrameExtractor, module: Any) -> bool:
    frame = extractor.from_traceback(traceback_of(module.boom), {})["frames"][-1]
    verdict: bool = frame["in_app"]
    return verdict


@pytest.mark.parametrize(
    ("include", "exclude", "expected"),
    [
        ((), (), {"myapp.core": True, "myapp.vendor.lib": True, "myapplication": True}),
        ((), ("myapp",), {"myapp.core": False, "myapp.vendor.lib": False, "myapplication": True}),
        (("myapp",), ("myapp.vendor",), {"myapp.core": True, "myapp.vendor.lib": False}),
        (("myapp.vendor",), ("myapp",), {"myapp.core": False, "myapp.vendor.lib": True}),
        (("myapp",), ("myapp",), {"myapp.core": True, "myapplication": True}),  # include wins
        ((), ("myapp.cor",), {"myapp.core": True}),  # prefixes end on dots
    ],
)
def test_in_app_include_and_exclude_match_dotted_module_prefixes(
    packages: dict[str, Any],
    include: tuple[str, ...],
    exclude: tuple[str, ...],
    expected: dict[str, bool],
) -> None:
    extractor = FrameExtractor(
        vars_normalizers=None, in_app_include=include, in_app_exclude=exclude
    )
    assert {name: in_app_of(extractor, packages[name]) for name in expected} == expected


def test_in_app_include_overrides_the_library_path_rule() -> None:
    including = FrameExtractor(vars_normalizers=None, in_app_include=["json"])
    frames = including.from_traceback(traceback_of(json.loads, "{"), {})["frames"]
    assert all(frame["in_app"] for frame in frames if frame["module"].startswith("json."))


# -- locals ---------------------------------------------------------------------------------------


def test_locals_are_left_out_without_include_locals_or_a_normalizer() -> None:
    calls: list[object] = []

    def spy(mapping: Mapping[str, object], meta: Meta) -> dict[str, Any]:
        calls.append(mapping)
        return {}

    tb = traceback_of(helpers.call_chain, 3)
    for extractor in (
        FrameExtractor(vars_normalizers=lambda: spy, include_locals=False),
        FrameExtractor(vars_normalizers=None),
    ):
        frames = extractor.from_traceback(tb, {})["frames"]
        assert all("vars" not in frame for frame in frames)
    assert calls == []


def test_normalizer_meta_lands_under_the_frame_index() -> None:
    def trimming(mapping: Mapping[str, object], meta: Meta) -> dict[str, Any]:
        if "fourth" in mapping:
            meta["fourth"] = {"": {"len": 99}}
        return dict.fromkeys(mapping, "...")

    extractor = FrameExtractor(vars_normalizers=lambda: trimming)
    meta: Meta = {}
    stacktrace = extractor.from_traceback(traceback_of(helpers.call_chain, 2), meta)

    chain_indexes = [
        str(index)
        for index, frame in enumerate(stacktrace["frames"])
        if frame["function"] == "call_chain"
    ]
    assert len(chain_indexes) == 2
    assert meta == {
        "frames": {index: {"vars": {"fourth": {"": {"len": 99}}}} for index in chain_indexes}
    }
    assert_valid(stacktrace, meta)


def test_a_raising_normalizer_only_costs_that_frame_its_vars() -> None:
    def hostile(mapping: Mapping[str, object], meta: Meta) -> dict[str, Any]:
        if "balance" in mapping:
            raise RuntimeError("cannot normalize")
        return {"ok": "yes"}

    extractor = FrameExtractor(vars_normalizers=lambda: hostile)
    frames = extractor.from_traceback(traceback_of(helpers.Account().withdraw, 100), {})["frames"]

    assert frames[0]["vars"] == {"ok": "yes"}
    assert "vars" not in frames[-1]
    assert frames[-1]["context_line"].strip().startswith("raise PaymentError")


def test_module_level_frames_do_not_send_globals_as_locals(extractor: FrameExtractor) -> None:
    namespace: dict[str, Any] = {"__name__": "script", "secret_global": 1}
    try:
        exec(compile("raise KeyError('top level')\n", "<script>", "exec"), namespace)
    except KeyError as exc:
        frames = extractor.from_traceback(exc.__traceback__, {})["frames"]
    assert frames[-1]["function"] == "<module>"
    assert "vars" not in frames[-1]


# -- long tracebacks ------------------------------------------------------------------------------


def test_recursion_error_keeps_the_oldest_and_newest_frames() -> None:
    normalized: list[object] = []
    context_lookups: list[int] = []

    def counting(mapping: Mapping[str, object], meta: Meta) -> dict[str, Any]:
        normalized.append(mapping)
        return {key: repr(value)[:20] for key, value in mapping.items()}

    class CountingCache(SourceCache):
        def context(self, abs_path: str, lineno: int, *args: Any, **kwargs: Any) -> Any:
            context_lookups.append(lineno)
            return super().context(abs_path, lineno, *args, **kwargs)

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(4000)
    try:
        tb = traceback_of(helpers.recurse_forever)
    finally:
        sys.setrecursionlimit(limit)
    total = 0
    entry: TracebackType | None = tb
    while entry is not None:
        total, entry = total + 1, entry.tb_next

    extractor = FrameExtractor(vars_normalizers=lambda: counting, source_cache=CountingCache())
    meta: Meta = {}
    stacktrace = extractor.from_traceback(tb, meta)
    frames = stacktrace["frames"]

    assert total > 3000
    assert len(frames) == 100
    assert stacktrace["frames_omitted"] == [50, total - 50]
    assert meta == {"frames": {"": {"len": total}}}
    assert frames[0]["function"] == "traceback_of"
    assert {frame["function"] for frame in frames[1:]} == {"recurse_forever"}
    assert frames[-1]["lineno"] == helpers.marker_line("recursion")
    assert frames[-1]["vars"] == {"level": repr(total - 2)}  # levels 0.. after traceback_of
    assert len(normalized) == len(context_lookups) == 100
    out = assert_relay_accepts(
        [{"type": "RecursionError", "value": "x", "stacktrace": stacktrace}],
        {"0": {"stacktrace": meta}},
    )
    assert out["_meta"]["exception"]["values"]["0"]["stacktrace"]["frames"][""] == {"len": total}


def test_max_frames_is_configurable() -> None:
    extractor = FrameExtractor(vars_normalizers=None, max_frames=4)
    stacktrace = extractor.from_traceback(traceback_of(helpers.call_chain, 10), {})

    assert len(stacktrace["frames"]) == 4
    assert stacktrace["frames_omitted"] == [2, 9]
    assert [frame["function"] for frame in stacktrace["frames"]] == [
        "traceback_of",
        "call_chain",
        "call_chain",
        "call_chain",
    ]


def test_no_traceback_gives_no_frames(extractor: FrameExtractor) -> None:
    meta: Meta = {}
    assert extractor.from_traceback(None, meta) == {"frames": []}
    assert meta == {}


# -- live stack -----------------------------------------------------------------------------------


def test_from_stack_ends_at_the_caller_without_errlink_frames(extractor: FrameExtractor) -> None:
    stacktrace = helpers.take_stack(extractor)
    frames = stacktrace["frames"]

    assert frames[-1]["function"] == "take_stack"
    assert frames[-1]["module"] == helpers.__name__
    assert frames[-1]["vars"]["local_marker"] == "'here'"
    assert frames[-2]["function"] == "test_from_stack_ends_at_the_caller_without_errlink_frames"
    assert not any(frame["module"].startswith("errlink") for frame in frames)
    assert_valid(stacktrace)


def test_from_stack_drops_frames_of_skipped_modules_anywhere(extractor: FrameExtractor) -> None:
    fake_errlink: dict[str, Any] = {"__name__": "errlink.integrations.fake"}
    exec(
        compile("def capture(take, fx):\n    return take(fx)\n", "<errlink-fake>", "exec"),
        fake_errlink,
    )
    frames = fake_errlink["capture"](helpers.take_stack, extractor)["frames"]

    functions = [frame["function"] for frame in frames]
    assert functions[-2:] == [
        "test_from_stack_drops_frames_of_skipped_modules_anywhere",
        "take_stack",
    ]
    assert "capture" not in functions


def test_from_stack_starts_at_the_given_frame_and_fills_meta() -> None:
    def trimming(mapping: Mapping[str, object], meta: Meta) -> dict[str, Any]:
        meta[""] = {"len": len(mapping)}
        return {}

    extractor = FrameExtractor(vars_normalizers=lambda: trimming, max_frames=6)
    meta: Meta = {}
    here = sys._getframe()
    stacktrace = extractor.from_stack(here, meta, skip_modules=())
    frames = stacktrace["frames"]

    assert frames[-1]["function"] == "test_from_stack_starts_at_the_given_frame_and_fills_meta"
    assert frames[-1]["context_line"].strip().startswith("stacktrace = extractor.from_stack(")
    assert len(frames) == 6
    assert meta["frames"][""]["len"] > 6
    with_vars = {str(index) for index, frame in enumerate(frames) if "vars" in frame}
    assert len(with_vars) >= 5  # the oldest frame may be a script's module level: no vars
    assert set(meta["frames"]) == {""} | with_vars


def test_errlinks_own_frames_are_never_in_app() -> None:
    from errlink._capture.stacktrace import FrameExtractor

    extractor = FrameExtractor(vars_normalizers=None, include_locals=False)
    # errlink may be installed editable (outside site-packages): its module name decides.
    assert extractor._in_app("errlink._capture.core", "/work/src/errlink/_core.py") is False
    assert extractor._in_app("errlinkish.app", "/work/src/errlinkish/app.py") is True

"""The public surface: what `import errlink` offers is exactly what __all__ says."""

import inspect

import errlink
import errlink.sync


def test_all_is_sorted_and_every_name_importable() -> None:
    for module in (errlink, errlink.sync):
        assert module.__all__ == sorted(module.__all__)
        for name in module.__all__:
            assert hasattr(module, name), name


def test_no_public_name_is_missing_from_all() -> None:
    public = {
        name
        for name, value in vars(errlink).items()
        if not name.startswith("_") and not inspect.ismodule(value)
    }
    assert public == set(errlink.__all__) - {"__version__"}


def test_the_design_contract_is_present() -> None:
    contract = {
        "AsyncClient", "Client", "init", "capture_exception", "capture_message", "capture_event",
        "flush", "close", "set_tag", "set_user", "set_context", "add_breadcrumb", "new_scope",
        "ConfigurationWarning",
    }  # fmt: skip
    assert contract <= set(errlink.__all__)
    assert errlink.sync.Client is errlink.Client
    assert issubclass(errlink.ConfigurationWarning, UserWarning)  # shown by default
    assert errlink.__version__ == "0.1.0"

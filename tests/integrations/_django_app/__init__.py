"""A Django app for the tests: holds a management command that crashes."""

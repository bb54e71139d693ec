"""Settings of the Django test project (used in-process by `_django_project.setup_django` and as
DJANGO_SETTINGS_MODULE by the management-command subprocess)."""

from __future__ import annotations

import os

SECRET_KEY = "errlink-tests-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["testserver", "127.0.0.1", "localhost"]
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "errlink.integrations.django",
    "_django_app",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]
ROOT_URLCONF = "_django_urls"
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("ERRLINK_TEST_DJANGO_DB", ":memory:"),
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
USE_TZ = True
# The DSN comes from ERRLINK_DSN in the environment (subprocess) or from the tests' overrides.
ERRLINK: dict[str, object] = {}
# The app's INFO records get through its logging configuration; errlink captures what does.
LOGGING = {"version": 1, "disable_existing_loggers": False, "loggers": {"shop": {"level": "INFO"}}}

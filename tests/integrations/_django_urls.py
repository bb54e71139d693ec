"""URLs of the Django test project."""

from __future__ import annotations

import _django_views as views
from django.urls import include, path

shop_patterns = ([path("me/", views.profile, name="profile")], "shop")

urlpatterns = [
    path("hello/", views.hello, name="hello"),
    path("orders/<int:order_id>/", views.create_order, name="create-order"),
    path("login/<str:username>/", views.log_in, name="login"),
    path("shop/", include(shop_patterns)),
    path("raw/", views.raw, name="raw"),
    path("manual/", views.manual, name="manual"),
    path("forbidden/", views.forbidden, name="forbidden"),
    path("unavailable/", views.unavailable, name="unavailable"),
    path("unnamed/", views.unnamed),
    path("log-error/", views.log_error, name="log-error"),
    path("async/<int:order_id>/", views.async_order, name="async-order"),
]

"""Views of the Django test project."""

from __future__ import annotations

import logging

from django.contrib.auth import login
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse

import errlink

log = logging.getLogger("shop")


def hello(request: HttpRequest) -> HttpResponse:
    return HttpResponse("hello")


def create_order(request: HttpRequest, order_id: int) -> HttpResponse:
    quantity = int(request.POST["quantity"])
    known = User.objects.filter(username=request.POST.get("customer", "nobody")).count()
    log.info("creating order %s for %s known customer(s)", order_id, known)
    if quantity > 2:
        raise ValueError(f"too many: {quantity}")
    return HttpResponse("created")


def log_in(request: HttpRequest, username: str) -> HttpResponse:
    user, _ = User.objects.get_or_create(
        username=username, defaults={"email": f"{username}@example.com"}
    )
    login(request, user)
    return HttpResponse("in")


def profile(request: HttpRequest) -> HttpResponse:
    name = request.user.get_username()
    raise LookupError(f"profile of {name} is gone")


def raw(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("raw body")


def manual(request: HttpRequest) -> HttpResponse:
    try:
        {}["nope"]
    except KeyError:
        errlink.capture_exception()
    return HttpResponse("handled")


def forbidden(request: HttpRequest) -> HttpResponse:
    raise PermissionDenied("members only")


def unavailable(request: HttpRequest) -> HttpResponse:
    return HttpResponse("down for maintenance", status=503)


def unnamed(request: HttpRequest) -> HttpResponse:
    raise NotImplementedError("no url name")


def log_error(request: HttpRequest) -> HttpResponse:
    log.error("payment provider said no")
    return HttpResponse("logged")


async def async_order(request: HttpRequest, order_id: int) -> HttpResponse:
    user = await request.auser()
    orders_seen = await User.objects.filter(username=user.get_username()).acount()
    log.info("async order %s for %s", order_id, orders_seen)
    raise ValueError(f"async order {order_id} failed")

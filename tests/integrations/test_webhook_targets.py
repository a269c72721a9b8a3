"""Webhooks and stock pushes go to public addresses only: a URL whose host is, or resolves to,
a loopback, private, link-local, multicast or reserved address is refused, unless private
targets are allowed; and only http(s) URLs are taken."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from zhongtai.integrations.targets import (
    TargetGuard,
    TargetRefused,
    address_refusal,
    url_refusal,
)

PUBLIC = "93.184.215.14"


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("::1", "loopback"),
        ("0.0.0.0", "unspecified"),  # noqa: S104 (an address refused, not a socket bound)
        ("::", "unspecified"),
        ("10.1.2.3", "private"),
        ("172.16.0.9", "private"),
        ("192.168.1.1", "private"),
        ("fd00::1", "private"),
        ("169.254.169.254", "link-local"),  # the cloud metadata service
        ("fe80::1%eth0", "link-local"),
        ("224.0.0.251", "multicast"),
        ("ff02::1", "multicast"),
        ("240.0.0.1", "private"),  # reserved for future use, and not routable
        ("100.64.0.1", "non-global"),  # carrier-grade NAT, shared address space
        ("::ffff:127.0.0.1", "loopback"),  # IPv4-mapped: the kernel connects to 127.0.0.1
        ("64:ff9b::a00:1", "private"),  # NAT64 of 10.0.0.1
        ("2002:c0a8:101::1", "private"),  # 6to4 of 192.168.1.1
    ],
)
def test_an_internal_address_is_refused_with_its_kind(address: str, kind: str) -> None:
    refusal = address_refusal(address)
    assert refusal is not None and refusal.endswith(f"is a {kind} address")
    assert address_refusal(address, allow_private=True) is None


@pytest.mark.parametrize("address", [PUBLIC, "8.8.8.8", "2606:4700:4700::1111"])
def test_a_public_address_is_a_target(address: str) -> None:
    assert address_refusal(address) is None


@given(st.ip_addresses(network="10.0.0.0/8") | st.ip_addresses(network="192.168.0.0/16"))
def test_every_address_of_a_private_range_is_refused(ip: ipaddress.IPv4Address) -> None:
    assert address_refusal(str(ip)) == f"{ip} is a private address"


@given(st.ip_addresses(network="127.0.0.0/8"))
def test_every_loopback_address_is_refused_even_written_as_ipv4_mapped_ipv6(
    ip: ipaddress.IPv4Address,
) -> None:
    assert address_refusal(f"::ffff:{ip}") == f"{ip} is a loopback address"


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://erp.example.com/x", "must be an absolute http:// or https:// URL"),
        ("file:///etc/passwd", "must be an absolute http:// or https:// URL"),
        ("gopher://127.0.0.1:6379/_INFO", "must be an absolute http:// or https:// URL"),
        ("https:///no-host", "must be an absolute http:// or https:// URL"),
        ("http://erp.example.com:99999/x", "is not a valid URL"),
        ("http://127.0.0.1:8080/hook", "127.0.0.1 is a loopback address"),
        ("http://[::1]/hook", "::1 is a loopback address"),
        ("http://[::ffff:10.0.0.1]/hook", "10.0.0.1 is a private address"),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a link-local address"),
    ],
)
def test_a_url_is_judged_by_its_scheme_and_any_address_written_in_it(url: str, reason: str) -> None:
    assert url_refusal(url) == reason


def test_a_url_naming_a_host_waits_for_its_resolution() -> None:
    assert url_refusal("https://erp.example.com/hooks") is None
    assert url_refusal(f"https://{PUBLIC}/hooks") is None


def _resolving_to(*addresses: str) -> TargetGuard:
    return TargetGuard(resolve=lambda host, port: list(addresses))


def test_a_host_resolving_to_public_addresses_may_be_subscribed() -> None:
    _resolving_to(PUBLIC, "2606:4700:4700::1111").check("https://erp.example.com/hooks")


@pytest.mark.parametrize(
    ("addresses", "reason"),
    [
        (["127.0.0.1"], "erp.example.com resolves to 127.0.0.1 is a loopback address"),
        # One internal address among public ones is enough: the client may pick any of them.
        ([PUBLIC, "10.0.0.7"], "erp.example.com resolves to 10.0.0.7 is a private address"),
        ([], "erp.example.com does not resolve"),
    ],
)
def test_a_host_resolving_to_an_internal_address_or_to_nothing_is_refused(
    addresses: list[str], reason: str
) -> None:
    with pytest.raises(TargetRefused, match=reason):
        _resolving_to(*addresses).check("https://erp.example.com/hooks")


def test_a_lookup_that_fails_is_refused_with_the_resolvers_reason() -> None:
    def no_such_name(host: str, port: int) -> list[str]:
        raise OSError(-2, "Name or service not known")

    with pytest.raises(TargetRefused, match=r"does not resolve \(Name or service not known\)"):
        TargetGuard(resolve=no_such_name).check("https://erp.example.com/hooks")


def test_the_port_of_the_scheme_is_looked_up_when_none_is_written() -> None:
    asked: list[tuple[str, int]] = []

    def record(host: str, port: int) -> list[str]:
        asked.append((host, port))
        return [PUBLIC]

    guard = TargetGuard(resolve=record)
    guard.check("https://erp.example.com/a")
    guard.check("http://erp.example.com/b")
    guard.check("http://erp.example.com:8443/c")
    assert asked == [("erp.example.com", 443), ("erp.example.com", 80), ("erp.example.com", 8443)]


def test_private_targets_allowed_take_loopback_and_internal_names_without_a_lookup() -> None:
    def never(host: str, port: int) -> list[str]:
        raise AssertionError("no lookup is needed when internal targets are allowed")

    guard = TargetGuard(allow_private=True, resolve=never)
    guard.check("http://127.0.0.1:9/hook")
    guard.check("http://erp.internal:8080/hook")
    with pytest.raises(TargetRefused, match="http:// or https://"):
        guard.check("ftp://127.0.0.1/hook")


def test_the_system_resolver_sees_localhost_as_loopback() -> None:
    # localhost is answered from the hosts file: no DNS server is asked.
    with pytest.raises(TargetRefused, match=r"localhost resolves to .* is a loopback address"):
        TargetGuard().check("http://localhost:8080/hook")

"""Where webhooks may go: never to loopback, private, link-local or metadata addresses unless allowed."""

from __future__ import annotations

import pytest

from longshore.domain.webhooks import parse_networks, refused_address
from longshore.service.webhooks import Refused, _pinned, signature


@pytest.mark.parametrize("address", ["127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254",
                                     "::1", "fe80::1", "fd00::1", "0.0.0.0", "::ffff:127.0.0.1", "224.0.0.1"])
def test_the_platforms_own_networks_are_refused(address):
    assert refused_address(address, ())


def test_public_addresses_and_allowed_networks_are_taken():
    assert not refused_address("93.184.216.34", ())
    assert not refused_address("10.1.2.3", parse_networks("10.1.0.0/16, 127.0.0.1/32"))
    assert refused_address("10.2.0.1", parse_networks("10.1.0.0/16"))


def test_a_plain_http_webhook_is_sent_to_the_address_that_was_checked():
    assert _pinned("http://127.0.0.1:2375/x?y=1", parse_networks("127.0.0.0/8")) == (
        "http://127.0.0.1:2375/x?y=1", "127.0.0.1:2375")
    with pytest.raises(Refused, match="resolves to 127.0.0.1, a loopback or private address"):
        _pinned("http://127.0.0.1:2375/containers/prune", ())


def test_the_signature_is_hmac_sha256_over_timestamp_dot_body():
    assert signature("secret-secret-secret", 1700000000, b'{"a":1}') == (
        "t=1700000000,v1=fa345d5b654e6667128855e14a4938c54b5b813699e6b72c5c4f501aa493ba92")

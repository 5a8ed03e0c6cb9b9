"""The pure rules under webhooks and the event stream: event-type patterns, Standard Webhooks
signatures (checked against the ``standardwebhooks`` package), the retry schedule, where a
webhook may go (SSRF), sealed secrets and stream positions."""

import ipaddress
import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import standardwebhooks
from hypothesis import given
from hypothesis import strategies as st

from cxops.common.auth import Role
from cxops.gateway.event_types import (
    PATTERN_SCHEMA,
    InvalidPattern,
    Pattern,
    intersect,
    parse_patterns,
    subjects_by_service,
)
from cxops.gateway.settings import SERVICES, WEBHOOK_RETRY_SCHEDULE
from cxops.gateway.stream import position
from cxops.gateway.stream.access import READABLE_EVENTS, readable_patterns
from cxops.gateway.webhooks import signing
from cxops.gateway.webhooks.destinations import (
    RefusedDestination,
    address_refusal,
    resolve,
    url_refusal,
)
from cxops.gateway.webhooks.retries import (
    AttemptResult,
    DeliveryStatus,
    decide,
    parse_retry_after,
)
from cxops.gateway.webhooks.sealing import SecretSealer, UnsealError

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def test_patterns_match_exact_types_and_prefixes() -> None:
    routing = Pattern.parse("cx.routing.*")
    case_opened = Pattern.parse("cx.feedback.case.opened.v1")
    case_all = Pattern.parse("cx.feedback.case.*")
    assert routing.matches("cx.routing.task.created.v1")
    assert not routing.matches("cx.routingx.task.created.v1")
    assert case_opened.matches("cx.feedback.case.opened.v1")
    assert not case_opened.matches("cx.feedback.case.opened.v2")
    assert case_all.covers(case_opened) and not case_opened.covers(case_all)
    assert parse_patterns(["cx.feedback.case.*", "cx.feedback.case.opened.v1"]) == [case_all]
    assert parse_patterns(["cx.*", "cx.routing.*"]) == [Pattern.parse("cx.*")]


@pytest.mark.parametrize(
    "text",
    ["*", "cx", "cx.routing", "cx.routin.*", "cx.routing.*.v1", "cx.Routing.task.v1", "x.y.*"],
)
def test_bad_patterns_are_refused(text: str) -> None:
    with pytest.raises(InvalidPattern):
        Pattern.parse(text)


def test_a_wanted_pattern_is_narrowed_to_what_is_allowed() -> None:
    wanted = parse_patterns(["cx.routing.*", "cx.feedback.case.*", "cx.journey.*"])
    allowed = parse_patterns(["cx.routing.task.*", "cx.feedback.*"])
    assert [str(p) for p in intersect(wanted, allowed)] == [
        "cx.feedback.case.*",
        "cx.routing.task.*",
    ]
    assert intersect(parse_patterns(["cx.journey.*"]), allowed) == []
    assert subjects_by_service(parse_patterns(["cx.*"])) == {
        service: [f"cx.{service}.>"] for service in SERVICES
    }
    assert subjects_by_service(
        parse_patterns(["cx.feedback.case.opened.v1", "cx.feedback.alert.*"])
    ) == {"feedback": ["cx.feedback.alert.>", "cx.feedback.case.opened.v1"]}


def test_every_role_has_a_row_in_the_readable_events_table() -> None:
    assert set(READABLE_EVENTS) == set(Role)
    for role in Role:
        assert readable_patterns(role)
    everything = Pattern.parse("cx.*")
    assert readable_patterns(Role.VIEWER) == [Pattern.parse("cx.scorecard.*")]
    assert everything not in readable_patterns(Role.AGENT)


@given(st.binary(max_size=300), st.integers(min_value=0, max_value=2**37))
def test_our_signatures_verify_with_the_reference_implementation(
    body: bytes, timestamp: int
) -> None:
    secret = signing.generate_secret()
    ours = signing.signature(secret=secret, message_id="msg_1", timestamp=timestamp, body=body)
    reference = standardwebhooks.Webhook(secret).sign(
        "msg_1", datetime.fromtimestamp(timestamp, UTC), body
    )
    assert ours == reference


def test_the_spec_example_signature() -> None:
    """The example in the Standard Webhooks specification."""
    assert (
        signing.signature(
            secret="whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            message_id="msg_p5jXN8AQM9LWM0D4loKWxJek",
            timestamp=1614265330,
            body=b'{"test": 2432232314}',
        )
        == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    )


def test_the_schedule_then_failure() -> None:
    schedule = WEBHOOK_RETRY_SCHEDULE
    assert [s / 60 for s in schedule[:3]] == [5 / 60, 5, 30]
    failed = AttemptResult(500, error="HTTP 500")
    for attempt, delay in enumerate(schedule, start=1):
        decision = decide(attempts=attempt, result=failed, now=NOW, schedule=schedule)
        assert decision.status is DeliveryStatus.PENDING
        assert decision.next_attempt_at == NOW + timedelta(seconds=delay)
    last = decide(attempts=len(schedule) + 1, result=failed, now=NOW, schedule=schedule)
    assert last.status is DeliveryStatus.FAILED and last.next_attempt_at is None
    for code in (200, 201, 204, 299):
        ok = decide(attempts=1, result=AttemptResult(code), now=NOW, schedule=schedule)
        assert ok.status is DeliveryStatus.SUCCEEDED
    for code in (None, 301, 400, 404, 500):
        retried = decide(attempts=1, result=AttemptResult(code), now=NOW, schedule=schedule)
        assert retried.status is DeliveryStatus.PENDING, code
    gone = decide(attempts=1, result=AttemptResult(410), now=NOW, schedule=schedule)
    assert gone.status is DeliveryStatus.FAILED and gone.disable_endpoint


def test_retry_after_delays_but_never_hastens_and_is_capped() -> None:
    schedule = (60.0, 60.0)
    later = decide(
        attempts=1, result=AttemptResult(503, retry_after=120), now=NOW, schedule=schedule
    )
    assert later.next_attempt_at == NOW + timedelta(seconds=120)
    sooner = decide(
        attempts=1, result=AttemptResult(429, retry_after=1), now=NOW, schedule=schedule
    )
    assert sooner.next_attempt_at == NOW + timedelta(seconds=60)
    huge = decide(
        attempts=1, result=AttemptResult(503, retry_after=1e9), now=NOW, schedule=schedule
    )
    assert huge.next_attempt_at == NOW + timedelta(hours=24)
    assert parse_retry_after("7", now=NOW) == 7
    assert parse_retry_after("Mon, 07 Dec 2026 12:00:30 GMT", now=NOW) == 30
    assert parse_retry_after("soon", now=NOW) is None
    assert parse_retry_after(None, now=NOW) is None


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "169.254.1.1",
        "100.64.0.1",
        "100.100.100.200",
        "168.63.129.16",
        "0.0.0.0",
        "224.0.0.1",
        "239.255.255.250",
        "192.0.2.10",
        "::1",
        "::",
        "fe80::1",
        "fc00::1",
        "fd00:ec2::254",
        "ff02::1",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
        "64:ff9b::a00:1",
        "2002:a00:1::1",
    ],
)
def test_internal_addresses_are_refused(address: str) -> None:
    assert address_refusal(ipaddress.ip_address(address)) is not None


@pytest.mark.parametrize("address", ["93.184.216.34", "1.1.1.1", "2606:4700:4700::1111"])
def test_public_addresses_are_allowed(address: str) -> None:
    assert address_refusal(ipaddress.ip_address(address)) is None


def test_urls_outside_development() -> None:
    assert url_refusal("https://hooks.example.com/x", checked=True) is None
    assert "https" in str(url_refusal("http://hooks.example.com/x", checked=True))
    assert "loopback" in str(url_refusal("https://127.0.0.1/x", checked=True))
    assert "metadata" in str(url_refusal("https://[fd00:ec2::254]/x", checked=True))
    assert "credentials" in str(url_refusal("https://u:p@hooks.example.com/", checked=True))
    assert url_refusal("http://127.0.0.1:9000/x", checked=False) is None
    assert url_refusal("ftp://127.0.0.1/x", checked=False) is not None


def resolver_of(answers: dict[str, list[str]]):  # type: ignore[no-untyped-def]
    async def resolve_name(host: str, port: int) -> list[str]:
        if host not in answers:
            raise OSError(f"unknown host {host}")
        return answers[host]

    return resolve_name


async def test_every_resolved_address_is_checked_and_the_connection_is_pinned() -> None:
    resolver = resolver_of(
        {
            "hooks.example.com": ["93.184.216.34", "2606:4700:4700::1111"],
            "mixed.example.com": ["93.184.216.34", "10.0.0.7"],
            "rebind.example.com": ["127.0.0.1"],
        }
    )
    destination = await resolve(
        "https://hooks.example.com:8443/in?x=1", checked=True, resolver=resolver
    )
    assert [str(a) for a in destination.addresses] == ["93.184.216.34", "2606:4700:4700::1111"]
    url, headers, extensions = destination.request_for(destination.addresses[1])
    assert str(url) == "https://[2606:4700:4700::1111]:8443/in?x=1"
    assert headers == {"host": "hooks.example.com:8443"}
    assert extensions == {"sni_hostname": "hooks.example.com"}
    for refused in ("mixed.example.com", "rebind.example.com", "nowhere.example.com"):
        with pytest.raises(RefusedDestination):
            await resolve(f"https://{refused}/x", checked=True, resolver=resolver)
    local = await resolve("http://rebind.example.com/x", checked=False, resolver=resolver)
    assert local.request_for(local.addresses[0])[2] == {}


def test_sealed_secrets_open_only_with_their_key_and_endpoint() -> None:
    endpoint_id, other = uuid.uuid4(), uuid.uuid4()
    sealer = SecretSealer("k" * 40)
    secret = signing.generate_secret()
    sealed = sealer.seal(secret, endpoint_id=endpoint_id)
    assert secret not in sealed and sealed.startswith("v1:")
    assert sealer.unseal(sealed, endpoint_id=endpoint_id) == secret
    assert sealer.seal(secret, endpoint_id=endpoint_id) != sealed  # a fresh nonce each time
    with pytest.raises(UnsealError):
        sealer.unseal(sealed, endpoint_id=other)
    with pytest.raises(UnsealError):
        SecretSealer("j" * 40).unseal(sealed, endpoint_id=endpoint_id)


@given(
    st.dictionaries(
        st.sampled_from(SERVICES), st.integers(min_value=0, max_value=2**63 - 1), min_size=1
    )
)
def test_positions_round_trip(where: dict[str, int]) -> None:
    assert position.decode(position.encode(where)) == where


@pytest.mark.parametrize(
    "text", ["", "feedback", "feedback-", "feedback-01", "nope-1", "feedback-1.feedback-2", "a b"]
)
def test_foreign_positions_are_refused(text: str) -> None:
    with pytest.raises(position.InvalidPosition):
        position.decode(text)


@given(
    text=st.one_of(
        st.from_regex(r"cx(\.[a-z]{1,9}){0,4}(\.\*|\.v[0-9])?", fullmatch=True),
        st.sampled_from(
            [f"cx.{service}.*" for service in SERVICES]
            + [f"cx.{service}.case.opened.v1" for service in SERVICES]
        ),
        st.text(max_size=30),
    )
)
def test_the_schema_pattern_accepts_exactly_what_the_rules_accept(text: str) -> None:
    """The API's schema states the subscription rules, so a client can tell before sending."""
    try:
        parse_patterns([text])
        accepted = True
    except InvalidPattern:
        accepted = False
    assert bool(re.fullmatch(PATTERN_SCHEMA, text)) == accepted, text

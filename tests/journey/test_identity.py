"""Identity resolution: hand-checked profiles, the normalisation and blocklist, properties that
must hold for any log (row order, blocked values, caps, connected parts resolved alone), and the
command."""

import hashlib
import json
import random
import re
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner, Result

from cxops.cli.main import app
from cxops.journey.domain.identifiers import (
    DEFAULT_BLOCKLIST,
    BlockRule,
    Kind,
    first_rule,
    kind_of,
    normalise_email,
    normalise_id,
    normalise_phone,
    normaliser,
)
from cxops.journey.domain.identity import (
    Event,
    Identifier,
    Resolution,
    Rules,
    Separation,
    is_blocked_by_rule,
    normalise,
    resolve,
)
from cxops.journey.formats.identities import report_json

T0 = datetime(2024, 5, 1, 9, tzinfo=UTC)


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def profile_sets(result: Resolution) -> set[frozenset[Identifier]]:
    return {frozenset(profile.identifiers) for profile in result.profiles}


def profile_of(result: Resolution, identifier: Identifier) -> str:
    return next(p.profile_id for p in result.profiles if identifier in p.identifiers)


ANN_EMAIL = Identifier("email", "ann@x.com")
ANN_PHONE = Identifier("phone", "+14158675309")
ANN_CRM = Identifier("crm_id", "C-1")


# -- hand-checked ----------------------------------------------------------------------------


def test_an_email_then_a_call_then_a_case_are_one_customer() -> None:
    result = resolve(
        [
            Event("case", (("phone", "+1 415 867 5309"), ("crm_id", " C-1 ")), at(20)),
            Event("web", (("email", " Ann@X.com"),), at(0)),
            Event("call", (("email", "ann@x.com"), ("phone", "(+1) 415-867-5309")), at(10)),
        ]
    )
    (profile,) = result.profiles
    assert set(profile.identifiers) == {ANN_EMAIL, ANN_PHONE, ANN_CRM}
    assert profile.events == ("web", "call", "case")
    assert (profile.first_seen, profile.last_seen) == (at(0), at(20))
    # Both links were seen once: the earlier (the call's) is taken first.
    first, second = result.merges
    assert (first.link.left, first.link.right, first.link.first_event) == (
        ANN_EMAIL,
        ANN_PHONE,
        "call",
    )
    assert (second.link.left, second.link.right, second.link.first_event) == (
        ANN_CRM,
        ANN_PHONE,
        "case",
    )
    assert first.sizes == (1, 1) and second.sizes == (1, 2)
    assert {merge.profile_id for merge in result.merges} == {profile.profile_id}
    assert result.refusals == () and result.blocked == () and result.invalid == ()


def test_a_shared_inbox_never_joins_two_customers() -> None:
    result = resolve(
        [
            Event("a1", (("email", "ann@x.com"), ("email", "info@acme.com"))),
            Event("b1", (("email", "bob@y.com"), ("email", "info@acme.com"))),
            Event("c1", (("email", "cat@z.com"), ("email", "family@home.net"))),
            Event("d1", (("email", "dan@z.com"), ("email", "family@home.net"))),
        ],
        Rules(blocklist=(*DEFAULT_BLOCKLIST, BlockRule(value="Family@Home.net"))),
    )
    assert profile_sets(result) == {
        frozenset({Identifier("email", name)})
        for name in ("ann@x.com", "bob@y.com", "cat@z.com", "dan@z.com")
    }
    assert result.merges == ()
    family, inbox = result.blocked
    assert (family.identifier.value, family.reason, family.detail) == (
        "family@home.net",
        "rule",
        "value Family@Home.net",
    )
    assert (inbox.identifier.value, inbox.detail, inbox.events) == (
        "info@acme.com",
        "pattern info@* (email)",
        2,
    )
    assert inbox.profiles == tuple(
        sorted(profile_of(result, Identifier("email", name)) for name in ("ann@x.com", "bob@y.com"))
    )


def test_a_value_seen_with_more_values_than_a_profile_holds_is_shared() -> None:
    """A phone seen with four emails, when a profile holds at most three, is a switchboard."""
    events = [
        Event(f"e{n}", (("phone", "+442079460000"), ("email", f"u{n}@x.com"))) for n in range(4)
    ]
    result = resolve(events)
    (switchboard,) = result.blocked
    assert switchboard.reason == "common"
    assert switchboard.detail == "seen with 4 email values; at most 3 fit in one profile"
    assert len(result.profiles) == 4 and result.merges == ()
    # Allowing a value to span two profiles lets it through; the cap then refuses the fourth.
    spanning = resolve(events, Rules(max_profiles_per_value=2))
    assert spanning.blocked == ()
    assert sorted(len(p.identifiers) for p in spanning.profiles) == [1, 4]
    (refusal,) = spanning.refusals
    assert (refusal.type, refusal.would_hold, refusal.limit) == ("email", 4, 3)


def test_a_cap_refuses_a_join_and_records_why() -> None:
    """One CRM id per profile: the email and the phone each met a different CRM id first, so
    the event that carries both cannot join them."""
    result = resolve(
        [
            Event("web", (("email", "ann@x.com"), ("crm_id", "C-1")), at(0)),
            Event("call", (("phone", "+14158675309"), ("crm_id", "C-2")), at(1)),
            Event("chat", (("email", "ann@x.com"), ("phone", "+14158675309")), at(2)),
        ],
        Rules(max_per_type={"crm_id": 1}),
    )
    assert profile_sets(result) == {
        frozenset({ANN_CRM, ANN_EMAIL}),
        frozenset({Identifier("crm_id", "C-2"), ANN_PHONE}),
    }
    (refusal,) = result.refusals
    assert (refusal.link.left, refusal.link.right, refusal.link.first_event) == (
        ANN_EMAIL,
        ANN_PHONE,
        "chat",
    )
    assert (refusal.type, refusal.would_hold, refusal.limit, refusal.step) == ("crm_id", 2, 1, 2)
    assert refusal.profiles == (profile_of(result, ANN_EMAIL), profile_of(result, ANN_PHONE))
    # The chat touches both; it belongs to the profile of its smallest identifier (the email).
    (split,) = result.split_events
    assert (split.event_id, split.profile_id, split.others) == (
        "chat",
        profile_of(result, ANN_EMAIL),
        (profile_of(result, ANN_PHONE),),
    )


def test_the_link_seen_in_more_events_wins_even_when_later() -> None:
    events = [Event("early", (("email", "ann@x.com"), ("crm_id", "C-2")), at(0))] + [
        Event(f"late{n}", (("email", "ann@x.com"), ("crm_id", "C-1")), at(10 + n)) for n in range(3)
    ]
    result = resolve(events, Rules(max_per_type={"crm_id": 1}, max_profiles_per_value=2))
    assert frozenset({ANN_EMAIL, ANN_CRM}) in profile_sets(result)
    (refusal,) = result.refusals
    assert refusal.link.right == ANN_EMAIL and refusal.link.left.value == "C-2"
    assert (result.merges[0].link.events, result.merges[0].link.first_event) == (3, "late0")


def test_events_without_a_usable_identifier_are_unresolved() -> None:
    result = resolve(
        [
            Event("blank", (("email", "  "),)),
            Event("bad", (("email", "ann@"), ("phone", "12"))),
            Event("shared", (("email", "noreply@shop.com"),)),
            Event("ok", (("email", "ann@x.com"), ("email", "ann@"))),
        ]
    )
    assert result.unresolved_events == ("bad", "blank", "shared")
    assert [(v.type, v.value, v.events) for v in result.invalid] == [
        ("email", "ann@", 2),
        ("phone", "12", 1),
    ]
    assert [p.events for p in result.profiles] == [("ok",)]


def test_a_split_keeps_its_sides_apart_even_through_another_value() -> None:
    """The email and the phone were split: neither their own event nor a path through the CRM id
    may join them again, and both refusals name the split."""
    unrelated = Separation(frozenset({Identifier("email", "bob@y.com")}), frozenset({ANN_CRM}))
    split = Separation(frozenset({ANN_EMAIL}), frozenset({ANN_PHONE}))
    result = resolve(
        [
            Event("call", (("email", "ann@x.com"), ("phone", "+14158675309")), at(0)),
            Event("web", (("email", "ann@x.com"), ("crm_id", "C-1")), at(1)),
            Event("case", (("phone", "+14158675309"), ("crm_id", "C-1")), at(2)),
        ],
        Rules(separations=(unrelated, split)),
    )
    assert profile_sets(result) == {frozenset({ANN_EMAIL, ANN_CRM}), frozenset({ANN_PHONE})}
    assert [merge.link.first_event for merge in result.merges] == ["web"]
    direct, through = result.separated
    assert (direct.step, direct.link.first_event, direct.separation) == (0, "call", 1)
    assert (through.step, through.link.first_event, through.separation) == (2, "case", 1)
    assert (through.link.left, through.link.right) == (ANN_CRM, ANN_PHONE)
    assert through.profiles == (profile_of(result, ANN_CRM), profile_of(result, ANN_PHONE))
    assert result.refusals == ()
    with pytest.raises(ValueError, match="share values"):
        Separation(frozenset({ANN_EMAIL}), frozenset({ANN_EMAIL, ANN_PHONE}))


def test_a_value_found_common_elsewhere_is_blocked_with_its_detail() -> None:
    detail = "seen with 7 email values; at most 3 fit in one profile"
    events = [Event("call", (("email", "ann@x.com"), ("phone", "+1 415 867 5309")))]
    assert len(resolve(events).profiles) == 1
    result = resolve(events, Rules(common={ANN_PHONE: detail, Identifier("email", "z@z.com"): "x"}))
    (phone,) = result.blocked
    assert (phone.identifier, phone.reason, phone.detail) == (ANN_PHONE, "common", detail)
    assert profile_sets(result) == {frozenset({ANN_EMAIL})} and result.merges == ()
    # A rule that also blocks it comes first.
    ruled = resolve(
        events, Rules(blocklist=(BlockRule(value="+14158675309"),), common={ANN_PHONE: detail})
    )
    assert [(b.reason, b.detail) for b in ruled.blocked] == [("rule", "value +14158675309")]


def test_event_ids_must_be_unique_and_times_zoned() -> None:
    with pytest.raises(ValueError, match="'e1' is used by more than one event"):
        resolve([Event("e1", ()), Event("e1", ())])
    with pytest.raises(ValueError, match="no timezone"):
        resolve([Event("e1", (), datetime(2024, 1, 1))])


def test_rules_refuse_impossible_limits() -> None:
    with pytest.raises(ValueError, match="crm_id"):
        Rules(max_per_type={"crm_id": 0})
    with pytest.raises(ValueError, match="max_profiles_per_value"):
        Rules(max_profiles_per_value=0)
    with pytest.raises(ValueError, match="country_code"):
        Rules(country_code="+44")


# -- normalisation and the blocklist -----------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  Ann@Example.COM ", "ann@example.com"),
        ("Ann Lee <ann@x.com>", "ann@x.com"),
        ("mailto:ann@x.com", "ann@x.com"),
        ("ann@", None),
        ("ann@localhost", None),
        ("a@b@c.com", None),
        ("not an email", None),
    ],
)
def test_emails(raw: str, expected: str | None) -> None:
    assert normalise_email(raw) == expected


@pytest.mark.parametrize(
    ("raw", "country_code", "expected"),
    [
        ("+1 (415) 867-5309", None, "+14158675309"),
        ("0044 20 7946 0018", None, "+442079460018"),
        ("(415) 867-5309", None, "4158675309"),
        ("(415) 867-5309", "1", "+14158675309"),
        ("1-415-867-5309", "1", "+14158675309"),
        ("07911 123456", "44", "+447911123456"),
        ("447911123456", "44", "+447911123456"),
        ("+44 7911 123456 ext. 12", None, "+447911123456"),
        ("+1 415 867 5309 x 4", None, "+14158675309"),
        ("12345", None, None),
        ("+1234567890123456", None, None),
    ],
)
def test_phones(raw: str, country_code: str | None, expected: str | None) -> None:
    assert normalise_phone(raw, country_code=country_code) == expected


def test_ids_are_trimmed_and_keep_their_case() -> None:
    assert normalise_id("  Cust-01 ") == "Cust-01"
    assert normalise_id("   ") is None


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("email", Kind.EMAIL),
        ("work_email", Kind.EMAIL),
        ("phone", Kind.PHONE),
        ("mobile_number", Kind.PHONE),
        ("tel", Kind.PHONE),
        ("hotel_id", Kind.ID),
        ("crm_id", Kind.ID),
    ],
)
def test_kinds_follow_type_names(name: str, kind: Kind) -> None:
    assert kind_of(name) is kind


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        (Kind.EMAIL, "noreply@shop.com"),
        (Kind.EMAIL, "ann@example.com"),
        (Kind.PHONE, "0000000000"),
        (Kind.PHONE, "+442222222222"),
        (Kind.PHONE, "+15555550100"),
        (Kind.PHONE, "+12125550142"),
        (Kind.PHONE, "1234567890"),
        (Kind.ID, "Unknown"),
        (Kind.ID, "000"),
    ],
)
def test_the_default_blocklist_catches_placeholders(kind: Kind, value: str) -> None:
    rules = [rule for rule in DEFAULT_BLOCKLIST if rule.applies_to(kind.value, kind)]
    test = first_rule(rules, lambda raw: raw)
    assert test(value) is not None


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        (Kind.EMAIL, "ann@x.com"),
        (Kind.EMAIL, "information@x.com"),
        (Kind.PHONE, "+14158675309"),
        (Kind.PHONE, "+447911123456"),
        (Kind.ID, "C-1"),
        (Kind.ID, "100"),
    ],
)
def test_the_default_blocklist_lets_real_values_through(kind: Kind, value: str) -> None:
    rules = [rule for rule in DEFAULT_BLOCKLIST if rule.applies_to(kind.value, kind)]
    assert first_rule(rules, lambda raw: raw)(value) is None


def test_a_rule_reports_the_first_that_matches_even_with_groups() -> None:
    rules = [
        BlockRule(regex=r"(\d)\1+"),
        BlockRule(pattern="+44*"),
        BlockRule(value="+44 20 7946 0000", type="phone"),
    ]
    test = first_rule(rules, lambda raw: normalise_phone(raw))
    assert test("+442079460000") is rules[1]
    assert test("7777777") is rules[0]
    assert test("+14158675309") is None


def test_block_rules_are_checked() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        BlockRule(value="a", pattern="b")
    with pytest.raises(ValueError, match="not a regular expression"):
        BlockRule(regex="(")
    with pytest.raises(ValueError, match="type or to a kind"):
        BlockRule(value="a", type="email", kind=Kind.EMAIL)


# -- properties ------------------------------------------------------------------------------

EMAILS = ["ann@x.com", " ANN@x.com", "bob@y.com", "cat@z.com", "dan@z.com", "info@acme.com"]
PHONES = ["+14158675309", "+1 415 867 5309", "+442079460018", "+447911123456", "0000000000"]
CRM_IDS = ["C-1", "C-2", "C-3", " C-1", "unknown"]
VALUES = {"email": EMAILS, "phone": PHONES, "crm_id": CRM_IDS}

identifier_pairs = st.sampled_from(
    [(kind, value) for kind, pool in VALUES.items() for value in pool]
)
logs = st.lists(
    st.tuples(
        st.lists(identifier_pairs, max_size=4).map(tuple),
        st.none() | st.integers(0, 5).map(at),
    ),
    max_size=25,
).map(
    lambda rows: [
        Event(f"e{number}", identifiers, when) for number, (identifiers, when) in enumerate(rows)
    ]
)
rule_sets = st.builds(
    Rules,
    blocklist=st.sampled_from([(), DEFAULT_BLOCKLIST, (BlockRule(value="cat@z.com"),)]),
    max_per_type=st.dictionaries(st.sampled_from(list(VALUES)), st.integers(1, 2)),
    default_max_per_type=st.integers(1, 3),
    max_profiles_per_value=st.integers(1, 3),
)


def carried(event: Event) -> set[Identifier]:
    """The normalised values an event carries."""
    found = set()
    for kind, raw in event.identifiers:
        value = normaliser(kind_of(kind))(raw)
        if value is not None:
            found.add(Identifier(kind, value))
    return found


def shuffled(events: list[Event], seed: int) -> list[Event]:
    rng = random.Random(seed)
    events = [
        Event(e.event_id, tuple(rng.sample(e.identifiers, len(e.identifiers))), e.timestamp)
        for e in events
    ]
    rng.shuffle(events)
    return events


@settings(max_examples=300, deadline=None)
@given(logs, rule_sets, st.integers())
def test_row_order_changes_nothing(events: list[Event], rules: Rules, seed: int) -> None:
    assert resolve(shuffled(events, seed), rules) == resolve(events, rules)


@settings(max_examples=200, deadline=None)
@given(logs, rule_sets, st.integers())
def test_event_ids_do_not_change_who_is_who(events: list[Event], rules: Rules, seed: int) -> None:
    names = [f"r{n}" for n in range(len(events))]
    random.Random(seed).shuffle(names)
    renamed = [
        Event(name, e.identifiers, e.timestamp) for name, e in zip(names, events, strict=True)
    ]
    assert profile_sets(resolve(renamed, rules)) == profile_sets(resolve(events, rules))


@settings(max_examples=300, deadline=None)
@given(logs, rule_sets)
def test_never_joins_through_a_blocked_value(events: list[Event], rules: Rules) -> None:
    """Every profile is held together by its merges alone, and each merge is two unblocked
    values seen together in the event it names."""
    result = resolve(events, rules)
    blocked = {value.identifier for value in result.blocked}
    by_id = {event.event_id: event for event in events}
    for profile in result.profiles:
        assert not blocked & set(profile.identifiers)
        groups = {identifier: {identifier} for identifier in profile.identifiers}
        for merge in result.merges:
            if merge.profile_id != profile.profile_id:
                continue
            left, right = merge.link.left, merge.link.right
            assert left not in blocked and right not in blocked
            assert {left, right} <= carried(by_id[merge.link.first_event])
            joined = groups[left] | groups[right]
            for identifier in joined:
                groups[identifier] = joined
        assert groups[profile.identifiers[0]] == set(profile.identifiers)


@settings(max_examples=200, deadline=None)
@given(logs, st.sampled_from(["cat@z.com", "+442079460018", "C-2"]))
def test_a_blocked_value_is_as_if_it_were_not_there(events: list[Event], value: str) -> None:
    """Without caps or shared-value detection in the way, blocking a value gives the profiles
    of the same log with that value removed."""

    def loose(*blocklist: BlockRule) -> Rules:
        return Rules(blocklist=blocklist, default_max_per_type=99, max_profiles_per_value=99)

    blocked = resolve(events, loose(BlockRule(value=value)))
    removed = [
        Event(e.event_id, tuple(p for p in e.identifiers if p[1].strip() != value), e.timestamp)
        for e in events
    ]
    assert profile_sets(blocked) == profile_sets(resolve(removed, loose()))


@settings(max_examples=300, deadline=None)
@given(logs, rule_sets)
def test_caps_hold(events: list[Event], rules: Rules) -> None:
    for profile in resolve(events, rules).profiles:
        for kind in VALUES:
            held = sum(1 for identifier in profile.identifiers if identifier.type == kind)
            assert held <= rules.cap(kind)


@settings(max_examples=200, deadline=None)
@given(logs)
def test_without_rules_profiles_are_the_connected_values(events: list[Event]) -> None:
    """With nothing blocked and no caps, the answer is plain union-find in row order."""
    loose = Rules(blocklist=(), default_max_per_type=99, max_profiles_per_value=99)
    parent: dict[Identifier, Identifier] = {}

    def find(identifier: Identifier) -> Identifier:
        while parent.setdefault(identifier, identifier) != identifier:
            identifier = parent[identifier]
        return identifier

    for event in events:
        found = sorted(carried(event))
        for identifier in found:
            parent[find(identifier)] = find(found[0])
    components: dict[Identifier, set[Identifier]] = {}
    for identifier in parent:
        components.setdefault(find(identifier), set()).add(identifier)
    assert profile_sets(resolve(events, loose)) == {frozenset(c) for c in components.values()}


@settings(max_examples=200, deadline=None)
@given(logs, rule_sets)
def test_normalise_and_is_blocked_by_rule_agree_with_resolve(
    events: list[Event], rules: Rules
) -> None:
    result = resolve(events, rules)
    seen = {identifier for profile in result.profiles for identifier in profile.identifiers}
    seen |= {value.identifier for value in result.blocked}
    normalised = {
        (type_name, raw): normalise(type_name, raw, rules)
        for event in events
        for type_name, raw in event.identifiers
    }
    assert seen == {identifier for identifier in normalised.values() if identifier is not None}
    assert {(v.type, v.value) for v in result.invalid} == {
        (type_name, raw.strip())
        for (type_name, raw), identifier in normalised.items()
        if identifier is None and raw.strip()
    }
    by_rule = {v.identifier: v.detail for v in result.blocked if v.reason == "rule"}
    assert by_rule == {
        identifier: detail
        for identifier in seen
        if (detail := is_blocked_by_rule(identifier, rules)) is not None
    }


@settings(max_examples=300, deadline=None)
@given(logs, rule_sets)
def test_connected_parts_resolve_alone_as_with_all_the_others(
    events: list[Event], rules: Rules
) -> None:
    """Events joined by no value that could join (valid, blocked by no rule, not found common
    over the whole log) resolve alone as they do together, given the values found common."""
    full = resolve(events, rules)
    common = {v.identifier: v.detail for v in full.blocked if v.reason == "common"}
    parent = list(range(len(events)))

    def find(position: int) -> int:
        while parent[position] != position:
            position = parent[position]
        return position

    holder: dict[Identifier, int] = {}
    for position, event in enumerate(events):
        for type_name, raw in event.identifiers:
            identifier = normalise(type_name, raw, rules)
            if identifier is None or identifier in common or is_blocked_by_rule(identifier, rules):
                continue
            parent[find(position)] = find(holder.setdefault(identifier, position))
    parts: dict[int, list[Event]] = {}
    for position, event in enumerate(events):
        parts.setdefault(find(position), []).append(event)
    alone = [resolve(part, replace(rules, common=common)) for part in parts.values()]

    def records(result: Resolution) -> Counter[object]:
        """Merges and refusals without their steps, which number the links of the whole log."""
        return Counter(
            [(m.profile_id, m.link, m.sizes) for m in result.merges]
            + [(r.link, r.profiles, r.type, r.would_hold, r.limit) for r in result.refusals]
        )

    assert Counter(p for r in alone for p in r.profiles) == Counter(full.profiles)
    assert sum((records(r) for r in alone), Counter()) == records(full)
    assert {e for r in alone for e in r.unresolved_events} == set(full.unresolved_events)
    assert {s for r in alone for s in r.split_events} == set(full.split_events)


# -- the command -----------------------------------------------------------------------------

WIDE = """event_id,timestamp,email,phone,crm_id
web,2024-05-01T09:00:00Z, Ann@X.com ,,
call,2024-05-01T09:10:00Z,ann@x.com,+1 415 867 5309,
case,2024-05-01 09:20,,+14158675309,C-1
bob,1714554000,bob@y.com,,
shared1,2024-05-02T10:00:00Z,info@acme.com,+447911123456,
shared2,2024-05-02T11:00:00Z,info@acme.com,,C-9
odd,,ann@,,
"""

LONG = """event_id,timestamp,type,value
web,2024-05-01T09:00:00Z,email, Ann@X.com
call,2024-05-01T09:10:00Z,email,ann@x.com
call,2024-05-01T09:10:00Z,phone,+1 415 867 5309
case,2024-05-01T09:20:00Z,phone,+14158675309
case,,crm_id,C-1
bob,1714554000,email,bob@y.com
shared1,2024-05-02T10:00:00Z,email,info@acme.com
shared1,2024-05-02T10:00:00Z,phone,+447911123456
shared2,2024-05-02T11:00:00Z,email,info@acme.com
shared2,2024-05-02T11:00:00Z,crm_id,C-9
odd,,email,ann@
"""


def run(tmp_path: Path, content: str, *args: str, name: str = "events.csv") -> Result:
    path = tmp_path / name
    path.write_text(content)
    return CliRunner().invoke(app, ["journey", "identities", str(path), *args])


def message(result: Result) -> str:
    """The error as one line, without the box typer draws around it."""
    return " ".join(re.sub(r"[│╭╮╰╯─]", " ", result.stderr).split())


def test_command_prints_the_resolution_as_json(tmp_path: Path) -> None:
    result = run(tmp_path, WIDE, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["totals"] == {
        "events": 7,
        "resolved_events": 6,
        "unresolved_events": 1,
        "profiles": 4,
        "identifiers": 6,
        "merges": 2,
        "refused_by_cap": 0,
        "blocked_values": 1,
        "invalid_values": 1,
        "split_events": 0,
    }
    ann = next(p for p in report["profiles"] if p["event_count"] == 3)
    assert ann["identifiers"] == {
        "crm_id": ["C-1"],
        "email": ["ann@x.com"],
        "phone": ["+14158675309"],
    }
    assert ann["events"] == ["web", "call", "case"]
    assert (ann["first_seen"], ann["last_seen"]) == ("2024-05-01T09:00:00Z", "2024-05-01T09:20:00Z")
    assert report["merges"][0] == {
        "step": 0,
        "profile": ann["id"],
        "left": {"type": "email", "value": "ann@x.com"},
        "right": {"type": "phone", "value": "+14158675309"},
        "shared_events": 1,
        "first_event": "call",
        "sizes": [1, 1],
    }
    (inbox,) = report["blocked"]
    assert inbox["value"] == "info@acme.com" and inbox["reason"] == "rule"
    (refusal,) = report["refusals"]
    assert refusal["reason"] == "blocked" and len(refusal["profiles"]) == 2
    assert report["invalid"] == [{"type": "email", "value": "ann@", "events": 1}]
    assert report["unresolved_events"] == ["odd"]


def test_the_long_layout_and_any_row_order_give_the_same_answer(tmp_path: Path) -> None:
    wide = run(tmp_path, WIDE, "--json")
    header, *rows = LONG.splitlines()
    random.Random(3).shuffle(rows)
    long = run(tmp_path, "\n".join([header, *rows]) + "\n", "--json", name="long.csv")
    assert long.exit_code == 0, long.output
    assert long.stdout == wide.stdout


def test_options_override_the_rules_file(tmp_path: Path) -> None:
    rules = tmp_path / "rules.json"
    rules.write_text(
        json.dumps(
            {
                "blocked": [{"type": "mobile", "value": "07911 123456"}],
                "max_per_type": {"*": 2},
                "kinds": {"mobile": "phone"},
            }
        )
    )
    content = (
        "event_id,mail,mobile,channel\n"
        "1,info@acme.com,07911 123456,web\n"
        "2,info@acme.com,07700 900123,call\n"
        "3,ann@x.com,+44 7700 900123,call\n"
    )
    result = run(
        tmp_path,
        content,
        "--json",
        "--rules",
        str(rules),
        "--identifier",
        "mail=email",
        "--identifier",
        "mobile",
        "--country-code",
        "44",
        "--no-default-blocklist",
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert [p["identifiers"] for p in report["profiles"]] == [
        {"email": ["ann@x.com", "info@acme.com"], "mobile": ["+447700900123"]}
    ]
    assert [(b["value"], b["detail"]) for b in report["blocked"]] == [
        ("+447911123456", "value 07911 123456 (mobile)")
    ]
    blocked = run(
        tmp_path,
        content,
        "--json",
        "--identifier",
        "mail",
        "--block",
        "info@*",
        "--no-default-blocklist",
    )
    assert json.loads(blocked.stdout)["blocked"][0]["detail"] == "pattern info@*"
    loose = ["--json", "--identifier", "mail", "--identifier", "mobile", "--no-default-blocklist"]
    loose += ["--country-code", "44", "--max-per-type", "mail=1"]
    capped = json.loads(run(tmp_path, content, *loose).stdout)
    assert [(b["value"], b["detail"]) for b in capped["blocked"]] == [
        ("+447700900123", "seen with 2 mail values; at most 1 fit in one profile")
    ]
    spanning = run(tmp_path, content, *loose, "--max-profiles-per-value", "2")
    (refusal,) = json.loads(spanning.stdout)["refusals"]
    assert (refusal["reason"], refusal["type"], refusal["would_hold"]) == ("cap", "mail", 2)


def test_the_summary_names_the_largest_profiles(tmp_path: Path) -> None:
    result = run(tmp_path, WIDE)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("7 events: 4 profiles, 1 events without a usable identifier")
    assert lines[1] == "identifier types: crm_id, email, phone"
    assert "crm_id C-1; email ann@x.com; phone +14158675309" in lines[4]
    assert any(line.startswith("blocked email info@acme.com") for line in lines)


@pytest.mark.parametrize(
    ("content", "args", "expected"),
    [
        ("", (), "is empty: expected a header row"),
        ("event_id,email\n", (), "has a header (line 1) but no events"),
        ("event_id,email\n", ("--identifier", "phone"), "column 'phone' is missing"),
        ("event_id,timestamp\ne1,2024-05-01\n", (), "no identifier columns"),
        (
            "event_id,timestamp,email\ne1,2024-05-01,a@x.com\ne2,yesterday,b@x.com\n",
            (),
            "line 3, column 'timestamp': not a timestamp: 'yesterday'",
        ),
        ("event_id,email\ne1,a@x.com,extra\n", (), "line 2: 3 cells where the header has 2"),
        ("event_id,email\n,a@x.com\n", (), "line 2, column 'event_id': empty"),
        (
            "event_id,timestamp,email\ne1,2024-05-01,a@x.com\ne1,2024-05-02,b@x.com\n",
            (),
            "line 3, column 'timestamp': event 'e1' has another timestamp on line 2",
        ),
        ("type,value\nemail,a@x.com\n", (), "column 'event_id' is missing: the long layout"),
        ("event_id,email,email\ne1,a,b\n", (), "column 'email' appears twice"),
        ("event_id,,email\ne1,x,a@x.com\n", (), "line 1: column 2 has no name"),
        ("event_id,email\ne1,a\n", ("--max-per-type", "0"), "expected N or TYPE=N"),
        ("event_id,email\ne1,a\n", ("--country-code", "+44"), "country_code"),
    ],
)
def test_bad_input_is_refused_naming_where(
    tmp_path: Path, content: str, args: tuple[str, ...], expected: str
) -> None:
    result = run(tmp_path, content, "--json", *args)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert expected in message(result)


@pytest.mark.parametrize(
    ("rules", "expected"),
    [
        ("{", "not JSON"),
        ('{"max_per_type": {"email": 0}}', "max_per_type.email"),
        ('{"blocklist": []}', "blocklist: Extra inputs are not permitted"),
        ('{"blocked": [{"value": "a", "pattern": "b"}]}', "blocked[0]: a block rule has exactly"),
    ],
)
def test_bad_rules_are_refused(tmp_path: Path, rules: str, expected: str) -> None:
    path = tmp_path / "rules.json"
    path.write_text(rules)
    result = run(tmp_path, "event_id,email\ne1,a@x.com\n", "--rules", str(path))
    assert result.exit_code == 2
    assert result.stdout == ""
    assert expected in message(result)


# -- the same answer as before resolution ran on arrays --------------------------------------


def varied_log(count: int, seed: int) -> list[Event]:
    """Customers with emails, phones and CRM ids spelled several ways, shared inboxes,
    placeholders, blank and malformed values, repeated values within an event, numeric and
    textual ids, ties in time, undated events and other time zones."""
    rng = random.Random(seed)
    elsewhere = timezone(timedelta(hours=2))
    events = []
    for number in range(count):
        customer = rng.randrange(count // 3)
        email = rng.choice(
            [
                f"c{customer}@x.com",
                f" C{customer}@X.com",
                f"c{customer % 97}@y.com",
                f"c{customer}@",
            ]
        )
        phone = rng.choice([f"+44 7{customer:09d}", f"07{customer:09d}", "0000000", "12"])
        crm = rng.choice([f"CRM-{customer}", f"CRM-{customer // 2}", "unknown", " "])
        identifiers = tuple(
            pair
            for pair in (("email", email), ("phone", phone), ("crm_id", crm), ("email", email))
            if rng.random() < 0.6
        )
        if number % 50 == 0:
            identifiers += (("email", "support@acme.com"),)
        if number % 40 == 0:
            when = None
        else:
            when = T0 + timedelta(minutes=rng.randrange(count))
            when = when.astimezone(elsewhere) if number % 7 == 0 else when
        event_id = str(number) if number % 3 else f"e{number}"
        events.append(Event(event_id, identifiers, when))
    rng.shuffle(events)
    return events


VARIED_RULES = Rules(
    max_per_type={"crm_id": 1},
    max_profiles_per_value=2,
    country_code="44",
    separations=(
        Separation(
            frozenset({Identifier("email", "c5@x.com")}),
            frozenset({Identifier("crm_id", "CRM-5"), Identifier("crm_id", "CRM-2")}),
        ),
    ),
    common={Identifier("email", "c7@y.com"): "seen elsewhere"},
)


@pytest.mark.parametrize(
    ("count", "seed", "rules", "expected"),
    [
        (3000, 5, VARIED_RULES, "9d7940c6f0458045378fd5b63a576addbb941f708d564cd999674fcdf26983fd"),
        (3000, 6, Rules(), "886c34fbfb8885c3d48b0abcc3f464a2d0a5e70b3413b22db4ea08667b506969"),
        (40, 7, VARIED_RULES, "f6dc9744f0ea4010de65b2837f82f4f785a3c703306e2d028230c34acbbce238"),
    ],
)
def test_the_resolution_is_the_one_found_event_by_event(
    count: int, seed: int, rules: Rules, expected: str
) -> None:
    """The digest of what the implementation before this one (an object per event, in pure
    Python) found for logs that take every path: merges, caps, splits, values blocked by rule,
    found common and given common, malformed values, ties in time and undated events."""
    result = resolve(varied_log(count, seed), rules)
    assert hashlib.sha256(repr(result).encode()).hexdigest() == expected


def test_the_json_is_written_as_json_dumps_writes_it() -> None:
    """The command writes its JSON in pieces, the bulk encoded by hand: the text must be
    exactly what ``json.dumps`` gives for the same values (spacing, escapes, key order)."""
    unusual = [
        Event('ñ"1\\', (("email", "José@exämple.es"), ("crm_id", 'C "1"\t')), at(3)),
        Event("ñ2", (("crm_id", 'C "1"\t'), ("phone", "+34 600 111 222")), None),
    ]
    events = [*varied_log(600, seed=8), *unusual]
    text = "".join(report_json(resolve(events, VARIED_RULES)))
    assert json.dumps(json.loads(text)) == text
    assert "\\u00f1" in text and '\\"1\\"' in text

"""Event contracts: for every subject a service consumes, whatever its publisher may publish
(the publisher's payload model) is read by the consumer's model, and read as the same values.

Each service's ``events`` module declares ``PUBLISHED`` (subject → payload model) and, if it
consumes, ``CONSUMED`` (subject → the model it reads with); its ``SPEC.consumers`` say what it
subscribes to. A subject consumed but published by no one, or subscribed to without a reading
model, fails here.
"""

import importlib
import importlib.util
from datetime import UTC, datetime
from types import UnionType
from typing import Annotated, Any, Union, get_args, get_origin

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pydantic import AwareDatetime, BaseModel, JsonValue, ValidationError

from cxops.common.components import SERVICES


def _events_module(service: str) -> Any:
    """The service's event catalogue; a service that neither publishes nor consumes has none."""
    name = f"cxops.{service}.events"
    return importlib.import_module(name) if importlib.util.find_spec(name) else None


def _subscriptions() -> list[tuple[str, str]]:
    """(consuming service, subject) for every subject every service's consumers subscribe to."""
    found = []
    for service in SERVICES:
        spec = importlib.import_module(f"cxops.{service}.app").SPEC
        for consumer in spec.consumers:
            found += [(service, subject) for subject in consumer.subjects]
    return found


def _published(subject: str) -> dict[str, type[BaseModel]]:
    publisher = subject.split(".")[1]
    published: dict[str, type[BaseModel]] = getattr(_events_module(publisher), "PUBLISHED", {})
    return published


#: Subjects a consumer already reads that their publisher does not publish yet, and when it
#: will (``{"cx.x.y.z.v1": "x publishes it with issue N"}``). Each entry must still be
#: unpublished: once it is, the entry goes and the subject is checked as every other.
AWAITED: dict[str, str] = {}

SUBSCRIPTIONS = _subscriptions()
CHECKED = [(service, subject) for service, subject in SUBSCRIPTIONS if subject not in AWAITED]


def test_awaited_subjects_are_not_published_yet() -> None:
    """One test over them all, so that it runs (and passes) when nothing is awaited."""
    consumed = {s for _, s in SUBSCRIPTIONS}
    for subject in sorted(AWAITED):
        assert subject in consumed, f"nobody consumes {subject}"
        assert subject not in _published(subject), f"{subject} is published now: check it"


def test_some_subjects_are_consumed() -> None:
    """The property below must not pass vacuously."""
    assert ("scorecard", "cx.feedback.response.received.v1") in SUBSCRIPTIONS


def test_every_published_subject_names_its_publisher() -> None:
    for service in SERVICES:
        for subject in getattr(_events_module(service), "PUBLISHED", {}):
            assert subject.startswith(f"cx.{service}.") and subject.endswith(".v1")


@pytest.mark.parametrize(("consumer", "subject"), CHECKED)
def test_the_consumer_reads_whatever_the_publisher_publishes(consumer: str, subject: str) -> None:
    published = _published(subject)
    assert subject in published, f"{subject} is consumed but its publisher does not publish it"
    publisher_model = published[subject]
    consumed: dict[str, type[BaseModel]] = getattr(_events_module(consumer), "CONSUMED", {})
    assert subject in consumed, f"{consumer} subscribes to {subject} without a model to read it"
    consumer_model = consumed[subject]

    # No deadline, no timing health check: on a loaded machine a recursive JSON draw can take
    # longer than hypothesis's defaults allow, which says nothing about the contract.
    @settings(
        max_examples=100,
        deadline=None,
        suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow],
    )
    @given(payload=publishable(publisher_model))
    def reads_the_same(payload: BaseModel) -> None:
        on_the_wire = payload.model_dump(mode="json")
        read = consumer_model.model_validate(on_the_wire)
        as_read = read.model_dump(mode="json")
        for name in consumer_model.model_fields:
            # Compared as they travel: a publisher's UUID is the same value as the consumer's
            # string of it (an id routing keeps as an external reference).
            assert as_read[name] == on_the_wire[name], name

    reads_the_same()


#: Field types that ``st.from_type`` would fill with values no publisher sends (naive times,
#: integers far outside any scale, text full of control characters), so that most draws are
#: publishable and a few are not (blank text, say).
_WIRE_TYPES: dict[Any, st.SearchStrategy[Any]] = {
    AwareDatetime: st.datetimes(timezones=st.just(UTC), min_value=datetime(1970, 1, 1)),
    int: st.integers(-1, 11),
    # JSON has no NaN or infinity: no publisher sends them (and NaN equals nothing).
    float: st.floats(allow_nan=False, allow_infinity=False),
    str: st.text(st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=40),
    JsonValue: st.recursive(
        st.none() | st.booleans() | st.integers(-5, 5) | st.text(max_size=8),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
        max_leaves=6,
    ),
}


def _strategy(annotation: Any) -> st.SearchStrategy[Any]:
    """The draws for a field's type: ``_WIRE_TYPES`` where they apply, inside ``Annotated`` and
    unions (``X | None``) too, ``st.from_type`` otherwise."""
    if get_origin(annotation) is Annotated:
        return _strategy(get_args(annotation)[0])
    if get_origin(annotation) in (Union, UnionType):
        return st.one_of(*(_strategy(arg) for arg in get_args(annotation)))
    if get_origin(annotation) is dict:
        key, value = get_args(annotation)
        return st.dictionaries(_strategy(key), _strategy(value), max_size=3)
    found = _WIRE_TYPES.get(annotation)
    return found if found is not None else st.from_type(annotation)


@st.composite
def publishable(draw: st.DrawFn, model: type[BaseModel]) -> BaseModel:
    """Any payload ``model`` accepts: each field drawn from its type, kept when the model's own
    validators accept the whole (what they refuse is never published, so not in the contract)."""
    values = {name: draw(_strategy(field.annotation)) for name, field in model.model_fields.items()}
    try:
        return model(**values)
    except ValidationError:
        assume(False)
        raise

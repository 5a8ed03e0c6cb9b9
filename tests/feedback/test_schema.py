"""The request body's JSON Schema admits exactly what the service accepts (issue 12, defect 6):
a client or a test generator built from the OpenAPI document is never refused a body the
schema allows, nor allowed one the service refuses."""

from typing import Any

import jsonschema_rs
from hypothesis import example, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from cxops.feedback.schemas import ResponseCreate
from cxops.stats.scales import SCALES, SurveyKind

SCHEMA = jsonschema_rs.validator_for(ResponseCreate.model_json_schema())

#: Text around the edges of the rules: whitespace that is stripped or not, control characters,
#: line breaks, and plain letters, in lengths on both sides of each limit.
EDGY = st.sampled_from(
    ["a", "z", " ", "\t", "\n", "\r", "\x0b", "\x00", "\x1b", "\x1f", "\x7f", "\x85", "\xa0",
     "\u2028", "\u3000", "\ufeff", "\u200b", "é", "😀"]
)  # fmt: skip
TEXT = st.one_of(
    st.text(EDGY, max_size=8),
    st.builds(
        lambda pad, body, tail: pad + body + tail,
        st.text(EDGY, max_size=3),
        st.integers(60, 130).map(lambda n: "x" * n),
        st.text(EDGY, max_size=3),
    ),
    st.text(max_size=20),
)


def accepted(body: dict[str, Any]) -> bool:
    try:
        ResponseCreate.model_validate(body)
    except ValidationError:
        return False
    return True


def body(**changes: Any) -> dict[str, Any]:
    return {"kind": "nps", "score": 9, "customer_ref": "c-1", "channel": "web"} | changes


@settings(max_examples=400)
@given(customer_ref=TEXT, channel=TEXT, comment=st.none() | TEXT)
@example(customer_ref=" \t", channel="web", comment=None)
@example(customer_ref="\tc-1\n", channel=" web ", comment=" \n ")
@example(customer_ref="c" * 128 + "   ", channel="w" * 65, comment=None)
@example(customer_ref="a\x00b", channel="web", comment="line\r\nbreaks\tand tabs")
@example(customer_ref="\x1cc", channel="web", comment="\x85")
def test_text_fields_schema_agrees_with_validation(
    customer_ref: str, channel: str, comment: str | None
) -> None:
    candidate = body(customer_ref=customer_ref, channel=channel, comment=comment)
    assert SCHEMA.is_valid(candidate) == accepted(candidate), candidate


@given(kind=st.sampled_from(list(SurveyKind)), score=st.integers(-2, 12), as_float=st.booleans())
def test_each_kinds_score_range_is_in_the_schema(
    kind: SurveyKind, score: int, as_float: bool
) -> None:
    """``7.0`` is an integer in JSON Schema, so it is one here too."""
    candidate = body(kind=kind.value, score=float(score) if as_float else score)
    assert SCHEMA.is_valid(candidate) == accepted(candidate) == SCALES[kind].contains(score)


def test_a_score_must_be_a_whole_number_in_both() -> None:
    for score in (7.5, "7", True, None):
        candidate = body(score=score)
        assert not SCHEMA.is_valid(candidate) and not accepted(candidate), score

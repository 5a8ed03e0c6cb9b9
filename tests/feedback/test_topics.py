"""Topics: the default CX taxonomy, tenants' taxonomies, confidence, and learning from people's
corrections."""

from random import Random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cxops.feedback.domain.topics import DEFAULT_TAXONOMY, Correction, TopicLearner, TopicTagger
from cxops.feedback.formats import TaxonomyError, load_taxonomy


@pytest.fixture(scope="module")
def tagger() -> TopicTagger:
    return TopicTagger()


def topics(tagger: TopicTagger, text: str) -> set[str]:
    return {match.topic for match in tagger.tag(text)}


def test_default_taxonomy_covers_the_issue_topics() -> None:
    assert {topic.name for topic in DEFAULT_TAXONOMY.topics} == {
        "billing",
        "refunds_and_returns",
        "delivery",
        "product_quality",
        "wait_time",
        "agent_knowledge",
        "agent_attitude",
        "website_and_app",
        "account_access",
        "pricing",
        "communication",
    }
    assert all(topic.owner for topic in DEFAULT_TAXONOMY.topics)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("I was charged twice on my last invoice", {"billing"}),
        ("Still waiting for my refund", {"refunds_and_returns", "wait_time"}),
        ("The courier left my parcel in the rain", {"delivery"}),
        ("Shoes fell apart within a week", {"product_quality"}),
        ("45 minutes on hold", {"wait_time"}),
        (
            "The agent had no idea and just read from a script",
            {"agent_knowledge", "agent_attitude"},
        ),
        ("She was rude and dismissive", {"agent_attitude"}),
        ("The website crashes at checkout", {"website_and_app"}),
        ("Locked out after a password reset", {"account_access"}),
        ("Far too expensive for what you get", {"pricing"}),
        ("Nobody told me, I never heard back by email", {"communication"}),
    ],
)
def test_default_topics(tagger: TopicTagger, text: str, expected: set[str]) -> None:
    assert expected <= topics(tagger, text)


def test_wildcards_match_word_forms(tagger: TopicTagger) -> None:
    assert "refunds_and_returns" in topics(tagger, "They refunded me")
    assert "delivery" in topics(tagger, "Delivered to the wrong house")


def test_exclusions_stop_a_look_alike(tagger: TopicTagger) -> None:
    assert "refunds_and_returns" not in topics(tagger, "Nobody would return my call")
    assert "wait_time" not in topics(tagger, "I can't wait to try the new phone")


def test_more_evidence_gives_more_confidence(tagger: TopicTagger) -> None:
    (one,) = [m for m in tagger.tag("My bill is wrong") if m.topic == "billing"]
    (more,) = [
        m
        for m in tagger.tag("My bill is wrong, I was charged twice by direct debit")
        if m.topic == "billing"
    ]
    assert 0.5 < one.confidence < more.confidence < 1.0


def test_matches_carry_owner_phrases_and_spans(tagger: TopicTagger) -> None:
    text = "Where is my parcel?"
    (match,) = tagger.tag(text)
    assert (match.topic, match.owner, match.phrases) == ("delivery", "logistics", ("parcel*",))
    start, end = match.spans[0]
    assert text[start:end] == "parcel"


def test_text_without_topic(tagger: TopicTagger) -> None:
    assert tagger.tag("Hello there") == ()


def test_tenant_extends_the_default() -> None:
    taxonomy = load_taxonomy(
        {
            "remove": ["pricing"],
            "topics": [
                {"name": "billing", "phrases": ["standing order"], "owner": "finance"},
                {
                    "name": "roaming",
                    "phrases": ["roaming", "abroad"],
                    "exclusions": ["roaming cow"],
                },
            ],
        }
    )
    tagger = TopicTagger(taxonomy)
    assert taxonomy.topic("pricing") is None
    billing = taxonomy.topic("billing")
    assert billing is not None and billing.owner == "finance" and "invoice*" in billing.phrases
    assert topics(tagger, "My standing order failed") == {"billing"}
    assert topics(tagger, "Roaming charges while abroad") >= {"roaming"}


def test_tenant_replaces_the_default() -> None:
    taxonomy = load_taxonomy(
        {"extends_default": False, "topics": [{"name": "claims", "phrases": ["claim*"]}]}
    )
    assert [topic.name for topic in taxonomy.topics] == ["claims"]


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        ({"topics": [{"name": "x", "phrase": ["typo"]}]}, "topics.0.phrase"),
        ({"topic": []}, "topic"),
        ({"topics": [{"name": "Bad Name"}]}, "topics.0.name"),
        ({"topics": [{"name": "x", "phrases": ["a|b"]}]}, "phrases must be words"),
        ({"remove": ["nonsense"]}, "no default topic 'nonsense'"),
        ({"topics": [{"name": "x"}, {"name": "x"}]}, "defined twice"),
    ],
)
def test_bad_taxonomy_is_refused_with_its_place(data: object, problem: str) -> None:
    with pytest.raises(TaxonomyError) as raised:
        load_taxonomy(data)
    assert problem in str(raised.value)


def test_rejections_lower_a_phrase_until_the_topic_is_doubtful() -> None:
    learner = TopicLearner()
    text = "The driver was lovely"  # "driver" is delivery, but here it is about attitude
    before = {m.topic: m.confidence for m in learner.tagger().tag(text)}
    learner.add(Correction(text, "delivery", correct=False))
    learner.add(Correction("Our driver helped a lot", "delivery", correct=False))
    after = {m.topic: m.confidence for m in learner.tagger().tag(text)}
    assert after["delivery"] < 0.5 < before["delivery"]
    assert after["agent_attitude"] == before["agent_attitude"]


def test_confirmations_teach_new_phrases() -> None:
    learner = TopicLearner()
    assert "delivery" not in topics(learner.tagger(), "The click and collect locker was jammed")
    learner.add(Correction("Click and collect was a disaster", "delivery", correct=True))
    assert "delivery" not in topics(learner.tagger(), "Click and collect again")  # one is luck
    learner.add(Correction("Used click and collect, took a week", "delivery", correct=True))
    assert "delivery" in topics(learner.tagger(), "The click and collect locker was jammed")


def test_learning_is_bounded() -> None:
    learner = TopicLearner()
    for _ in range(100):
        learner.add(Correction("my bill", "billing", correct=False))
        learner.add(Correction("sprockets and widgets and gizmos everywhere", "pricing", True))
    (billing,) = learner.tagger().tag("my bill")
    assert billing.confidence > 0  # never below the floor weight
    assert len(learner.tagger().tag("sprockets widgets gizmos everywhere")) == 1
    learnt = learner.tagger().tag("sprockets widgets gizmos everywhere")[0]
    assert learnt.confidence < 1.0


def test_unknown_topic_in_a_correction_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown topic 'nonsense'"):
        TopicLearner().add(Correction("text", "nonsense", correct=True))


corrections = st.lists(
    st.builds(
        Correction,
        text=st.sampled_from(
            ["my bill was wrong", "parcel never came", "rude agent", "click and collect late"]
        ),
        topic=st.sampled_from(["billing", "delivery", "agent_attitude"]),
        correct=st.booleans(),
    ),
    max_size=20,
)


@settings(max_examples=100, deadline=None)
@given(corrections, st.randoms())
def test_learning_does_not_depend_on_the_order(
    given_corrections: list[Correction], random: Random
) -> None:
    shuffled = list(given_corrections)
    random.shuffle(shuffled)
    results = []
    for order in (given_corrections, shuffled):
        learner = TopicLearner()
        for correction in order:
            learner.add(correction)
        tagger = learner.tagger()
        results.append([tagger.tag(text) for text in ("my bill was late", "click and collect")])
    assert results[0] == results[1]

"""The enrichment pipeline and ``cxops feedback analyze``: the output contract, bad input, and
the reasons a verbatim goes to a person."""

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from cxops.cli.main import app
from cxops.feedback.domain.enrichment import (
    LANGUAGE_UNDETERMINED,
    LOW_TOPIC_CONFIDENCE,
    MAX_TEXT_CHARS,
    NO_TOPIC,
    NOT_ENGLISH,
    SCORE_DISAGREES,
    SCORE_NOT_A_NUMBER,
    SCORE_OUT_OF_RANGE,
    TRUNCATED,
    Enricher,
    read_score,
)
from cxops.feedback.domain.sentiment import SentimentLabel
from cxops.feedback.domain.topics import Correction, TopicLearner
from cxops.stats.scales import SurveyKind

runner = CliRunner()
ENRICHER = Enricher()


@pytest.fixture(scope="module")
def enricher() -> Enricher:
    return Enricher()


def test_the_issue_example(enricher: Enricher) -> None:
    result = enricher.enrich("The agent was lovely but the refund never came.")
    assert result.sentiment is not None and result.sentiment.label is SentimentLabel.NEGATIVE
    by_topic = {topic.topic: topic.sentiment.label for topic in result.topics}
    assert by_topic["agent_attitude"] is SentimentLabel.POSITIVE
    assert by_topic["refunds_and_returns"] is SentimentLabel.NEGATIVE


def test_personal_data_is_gone_before_analysis(enricher: Enricher) -> None:
    result = enricher.enrich("Write to jo@example.com about the refund")
    assert "jo@example.com" not in result.redacted
    assert result.pii == {"email": 1}
    assert "communication" not in {t.topic for t in result.topics}  # "[EMAIL]" is not a word


def test_a_high_score_with_an_angry_comment_needs_review(enricher: Enricher) -> None:
    angry = "Waited an hour on hold and nobody fixed my bill"
    assert SCORE_DISAGREES in enricher.enrich(angry, 9).review_reasons
    assert SCORE_DISAGREES not in enricher.enrich(angry, 2).review_reasons
    delighted = "Brilliant service, the agent sorted my bill in minutes, thank you!"
    assert SCORE_DISAGREES in enricher.enrich(delighted, 3).review_reasons
    assert not enricher.enrich(delighted, 10).needs_review


def test_scores_on_other_scales() -> None:
    csat = Enricher(score_kind=SurveyKind.CSAT)
    assert SCORE_OUT_OF_RANGE in csat.enrich("My bill was wrong", 7).review_reasons
    assert SCORE_DISAGREES in csat.enrich("Awful, my bill is still wrong", 5).review_reasons
    assert read_score("6", SurveyKind.CES).value == 6.0
    assert read_score(" ", SurveyKind.NPS).value is None
    assert read_score("nan", SurveyKind.NPS).problem == SCORE_OUT_OF_RANGE
    assert read_score("ten", SurveyKind.NPS).problem == SCORE_NOT_A_NUMBER


def test_text_in_another_language_gets_no_pretend_sentiment(enricher: Enricher) -> None:
    result = enricher.enrich("El servicio fue terrible y nadie me ayudó con el reembolso")
    assert result.language.language == "es"
    assert (result.sentiment, result.topics) == (None, ())
    assert result.review_reasons == (NOT_ENGLISH,)


def test_text_in_no_known_language_says_so(enricher: Enricher) -> None:
    result = enricher.enrich("Palvelu oli todella hidas ja kukaan ei vastannut puhelimeen")
    assert result.sentiment is None and LANGUAGE_UNDETERMINED in result.review_reasons


def test_empty_text_is_reported_not_reviewed(enricher: Enricher) -> None:
    result = enricher.enrich("  \n ", 7)
    assert result.empty and result.sentiment is None and not result.needs_review
    assert result.score.value == 7.0


def test_huge_text_is_cut_at_a_word_and_flagged(enricher: Enricher) -> None:
    text = "The refund never came. " * 1_000
    result = enricher.enrich(text)
    assert result.truncated and TRUNCATED in result.review_reasons
    assert len(result.redacted) <= MAX_TEXT_CHARS
    assert text.startswith(result.redacted) and text[len(result.redacted)] == " "
    assert result.original_length == len(text)


def test_no_topic_needs_review(enricher: Enricher) -> None:
    assert NO_TOPIC in enricher.enrich("Hello, it is me again.").review_reasons


def run(*args: str) -> Any:
    return runner.invoke(app, ["feedback", "analyze", *args])


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def survey(tmp_path: Path) -> Path:
    return write(
        tmp_path / "survey.csv",
        "id,comment,score\n"
        '1,"The agent was lovely but the refund never came. Call me on +44 7700 900123",9\n'
        "2,,5\n"
        '3,"Le service était nul, personne ne répond",2\n'
        '4,"Quick delivery, great product",11\n'
        '5,"Sarah sorted my bill in 5 minutes",abc\n',
    )


def test_command_prints_one_object_per_row(survey: Path) -> None:
    result = run(str(survey), "--text-column", "comment", "--score-column", "score", "--json")
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [row["row"] for row in rows] == [1, 2, 3, 4, 5]
    for row in rows:
        assert {"row", "redacted", "pii", "sentiment", "topics", "needs_review"} <= set(row)
    first = rows[0]
    assert first["pii"] == {"phone": 1} and "7700" not in first["redacted"]
    assert set(first["sentiment"]) == {"label", "score", "confidence"}
    assert first["sentiment"]["label"] == "negative"
    assert {"topic", "confidence", "sentiment"} <= set(first["topics"][0])
    assert first["needs_review"] and SCORE_DISAGREES in first["review_reasons"]
    assert rows[1]["empty"] and rows[1]["sentiment"] is None and rows[1]["topics"] == []
    assert rows[2]["language"]["code"] == "fr" and rows[2]["sentiment"] is None
    assert SCORE_OUT_OF_RANGE in rows[3]["review_reasons"] and rows[3]["score"] is None
    assert SCORE_NOT_A_NUMBER in rows[4]["review_reasons"]
    assert "rows 4, 5" in result.stderr and "'score'" in result.stderr


def test_command_without_json_prints_a_line_per_row(survey: Path) -> None:
    result = run(str(survey))
    assert result.exit_code == 0
    assert len(result.stdout.splitlines()) == 5
    assert "(empty)" in result.stdout and "(language fr)" in result.stdout


@pytest.mark.parametrize("option", ["--text-column", "--score-column"])
def test_unknown_column_is_exit_2_naming_it(survey: Path, option: str) -> None:
    result = run(str(survey), option, "verbatim", "--json")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert "'verbatim'" in result.stderr and option in result.stderr


def test_score_scale_option(tmp_path: Path) -> None:
    path = write(tmp_path / "csat.csv", "comment,csat\nMy bill is wrong again,5\n")
    result = run(str(path), "--score-column", "csat", "--score-scale", "csat", "--json")
    row = json.loads(result.stdout)
    assert row["score"] == 5.0 and SCORE_DISAGREES in row["review_reasons"]


def test_tenant_taxonomy_option(tmp_path: Path) -> None:
    taxonomy = write(
        tmp_path / "taxonomy.json",
        json.dumps({"topics": [{"name": "roaming", "phrases": ["roaming"], "owner": "travel"}]}),
    )
    path = write(tmp_path / "v.csv", "comment\nRoaming charges are a joke\n")
    row = json.loads(run(str(path), "--taxonomy", str(taxonomy), "--json").stdout)
    roaming = [t for t in row["topics"] if t["topic"] == "roaming"]
    assert roaming and roaming[0]["owner"] == "travel"


def test_invalid_taxonomy_is_refused(tmp_path: Path) -> None:
    taxonomy = write(tmp_path / "taxonomy.json", json.dumps({"topics": [{"nme": "x"}]}))
    path = write(tmp_path / "v.csv", "comment\nhello\n")
    result = run(str(path), "--taxonomy", str(taxonomy), "--json")
    assert result.exit_code == 2 and result.stdout == ""
    assert "topics.0.nme" in result.stderr


def test_corrections_option_learns(tmp_path: Path) -> None:
    corrections = write(
        tmp_path / "corrections.csv",
        "text,topic,correct\n"
        "Click and collect was a disaster,delivery,true\n"
        "Used click and collect and it took a week,delivery,yes\n",
    )
    path = write(tmp_path / "v.csv", "comment\nThe click and collect locker was jammed\n")
    plain = json.loads(run(str(path), "--json").stdout)
    learnt = json.loads(run(str(path), "--corrections", str(corrections), "--json").stdout)
    assert "delivery" not in {t["topic"] for t in plain["topics"]}
    assert "delivery" in {t["topic"] for t in learnt["topics"]}


def test_bad_corrections_name_the_row(tmp_path: Path) -> None:
    corrections = write(tmp_path / "c.csv", "text,topic,correct\nx,billing,maybe\n")
    path = write(tmp_path / "v.csv", "comment\nhello\n")
    result = run(str(path), "--corrections", str(corrections))
    assert result.exit_code == 2 and "row 1" in result.stderr


def test_a_topic_people_keep_rejecting_becomes_doubtful() -> None:
    learner = TopicLearner()
    for text in ("The driver was rude", "Our driver was late", "Driver again"):
        learner.add(Correction(text, "delivery", correct=False))
    result = Enricher(tagger=learner.tagger()).enrich("The driver was there")
    assert LOW_TOPIC_CONFIDENCE in result.review_reasons


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300), st.one_of(st.none(), st.text(max_size=5), st.floats()))
def test_any_text_and_score_give_a_result(text: str, score: str | float | None) -> None:
    result = ENRICHER.enrich(text, score)
    if result.sentiment is not None:
        assert -1.0 <= result.sentiment.score <= 1.0
        assert 0.0 <= result.sentiment.confidence <= 1.0
    assert result.needs_review == bool(result.review_reasons)
    assert all(0.0 < topic.confidence <= 1.0 for topic in result.topics)


def test_a_file_that_is_not_utf8_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes("comment\nCaf\xe9 was cold\n".encode("latin-1"))
    result = run(str(path))
    assert result.exit_code == 2 and "unreadable after row 0" in result.stderr

"""``cxops feedback analyze``: enrich a CSV of verbatims (redaction, language, sentiment, topics,
needs_review), one result per row, nothing dropped."""

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from cxops.cli.json_input import read_json
from cxops.feedback.domain.enrichment import Enricher, Enrichment
from cxops.feedback.domain.sentiment import Sentiment
from cxops.feedback.domain.topics import DEFAULT_TAXONOMY, Taxonomy, TopicLearner, TopicTagger
from cxops.feedback.formats import (
    InputError,
    MissingColumn,
    TaxonomyError,
    load_taxonomy,
    read_corrections,
    read_verbatims,
)
from cxops.stats.scales import SurveyKind


def analyze_command(
    file: Annotated[
        Path,
        typer.Argument(
            metavar="FILE.csv",
            help="Verbatims, one per row, with a header row.",
            exists=True,
            dir_okay=False,
        ),
    ],
    text_column: Annotated[str, typer.Option(help="Column of the verbatim.")] = "comment",
    score_column: Annotated[
        str | None, typer.Option(help="Column of the survey score, compared with the sentiment.")
    ] = None,
    score_scale: Annotated[
        SurveyKind,
        typer.Option(help="Scale of the score: nps 0-10, csat 1-5, ces 1-7."),
    ] = SurveyKind.NPS,
    taxonomy: Annotated[
        Path | None,
        typer.Option(
            metavar="FILE.json",
            help="Tenant taxonomy (see services/feedback/README.md); default: the CX taxonomy.",
            exists=True,
            dir_okay=False,
        ),
    ] = None,
    corrections: Annotated[
        Path | None,
        typer.Option(
            metavar="FILE.csv",
            help="People's topic corrections to learn from: columns text, topic, correct.",
            exists=True,
            dir_okay=False,
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object per row (JSON lines).")
    ] = False,
) -> None:
    """Enrich each verbatim: personal data redacted, language, sentiment, topics with their own
    sentiment, and whether a person should review it.

    Rows are numbered from 1 after the header; every row gets a result. A bad score (off the
    scale, not a number) flags its row, named on stderr. Not UTF-8 text: exit code 2."""
    chosen = _read_taxonomy(taxonomy) if taxonomy is not None else DEFAULT_TAXONOMY
    tagger = _learn(chosen, corrections) if corrections is not None else TopicTagger(chosen)
    enricher = Enricher(tagger=tagger, score_kind=score_scale)
    bad_scores: list[int] = []
    reviews = rows = 0
    try:
        for row, (text, score) in enumerate(
            read_verbatims(file, text_column=text_column, score_column=score_column), start=1
        ):
            result = enricher.enrich(text, score)
            rows += 1
            reviews += result.needs_review
            if result.score.problem is not None:
                bad_scores.append(row)
            typer.echo(_json_line(row, result) if as_json else _summary_line(row, result))
    except MissingColumn as exc:
        option = "--text-column" if exc.column == text_column else "--score-column"
        raise typer.BadParameter(str(exc), param_hint=option) from exc
    except InputError as exc:
        raise typer.BadParameter(str(exc)) from exc
    _report(rows, reviews, bad_scores, score_column, score_scale)


def _report(
    rows: int, reviews: int, bad_scores: list[int], column: str | None, scale: SurveyKind
) -> None:
    typer.echo(f"{rows:,} rows, {reviews:,} need review", err=True)
    if bad_scores:
        shown = ", ".join(str(row) for row in bad_scores[:20])
        more = f" and {len(bad_scores) - 20} more" if len(bad_scores) > 20 else ""
        typer.echo(
            f"column {column!r}: not a {scale.value} score (flagged) in rows {shown}{more}",
            err=True,
        )


def _read_taxonomy(path: Path) -> Taxonomy:
    data = read_json(path)
    try:
        return load_taxonomy(data)
    except TaxonomyError as exc:
        places = "\n".join(f"  {problem}" for problem in exc.problems)
        raise typer.BadParameter(f"{path} is not a valid taxonomy:\n{places}") from exc


def _learn(taxonomy: Taxonomy, path: Path) -> TopicTagger:
    learner = TopicLearner(taxonomy)
    try:
        for row, correction in read_corrections(path):
            try:
                learner.add(correction)
            except ValueError as exc:
                raise typer.BadParameter(f"{path.name} row {row}: {exc}") from exc
    except InputError as exc:
        raise typer.BadParameter(str(exc)) from exc
    return learner.tagger()


def _json_line(row: int, result: Enrichment) -> str:
    return json.dumps(
        {
            "row": row,
            "redacted": result.redacted,
            "pii": dict(result.pii),
            "language": {
                "code": result.language.language,
                "confidence": result.language.confidence,
            },
            "sentiment": _sentiment(result.sentiment),
            "topics": [
                {
                    "topic": topic.topic,
                    "confidence": topic.confidence,
                    "sentiment": _sentiment(topic.sentiment),
                    "owner": topic.owner,
                    "phrases": list(topic.phrases),
                }
                for topic in result.topics
            ],
            "needs_review": result.needs_review,
            "review_reasons": list(result.review_reasons),
            "empty": result.empty,
            "truncated": result.truncated,
            "original_length": result.original_length,
            "score": result.score.value,
        },
        ensure_ascii=False,
    )


def _sentiment(sentiment: Sentiment | None) -> dict[str, Any] | None:
    if sentiment is None:
        return None
    return {
        "label": sentiment.label.value,
        "score": sentiment.score,
        "confidence": sentiment.confidence,
    }


def _summary_line(row: int, result: Enrichment) -> str:
    if result.empty:
        feeling = "(empty)"
    elif result.sentiment is None:
        feeling = f"(language {result.language.language})"
    else:
        feeling = f"{result.sentiment.label.value:<8} {result.sentiment.score:+.2f}"
    topics = ", ".join(f"{t.topic} {t.sentiment.label.value[:3]}" for t in result.topics)
    review = f"  review: {', '.join(result.review_reasons)}" if result.needs_review else ""
    return f"{row:>6}  {feeling:<16} {topics or '-'}{review}"

"""Feedback reads its settings from ``CXOPS_FEEDBACK_*`` and from nowhere else."""

import pytest
from pydantic import ValidationError

from cxops.feedback.app import create_app
from cxops.feedback.settings import FeedbackSettings


def test_settings_come_from_the_feedback_prefix_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CXOPS_FEEDBACK_ENVIRONMENT", "development")
    monkeypatch.setenv("CXOPS_FEEDBACK_DATABASE_URL", "sqlite+aiosqlite:///./var/feedback.db")
    monkeypatch.setenv("CXOPS_SCORECARD_DATABASE_URL", "sqlite+aiosqlite:///./var/scorecard.db")
    monkeypatch.setenv("CXOPS_FEEDBACK_OUTBOX_BATCH_SIZE", "50")

    settings: FeedbackSettings = create_app().state.settings

    assert settings.database_url == "sqlite+aiosqlite:///./var/feedback.db"
    assert settings.outbox_batch_size == 50


def test_production_refuses_the_development_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CXOPS_FEEDBACK_SIGNING_SECRET", raising=False)
    monkeypatch.setenv("CXOPS_FEEDBACK_ENVIRONMENT", "production")

    with pytest.raises(ValidationError, match="signing_secret"):
        FeedbackSettings()

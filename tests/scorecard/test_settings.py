"""Scorecard reads its settings from ``CXOPS_SCORECARD_*`` and from nowhere else."""

import pytest
from pydantic import ValidationError

from cxops.scorecard.app import create_app
from cxops.scorecard.settings import ScorecardSettings


def test_settings_come_from_the_scorecard_prefix_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CXOPS_SCORECARD_ENVIRONMENT", "development")
    monkeypatch.setenv("CXOPS_SCORECARD_DATABASE_URL", "sqlite+aiosqlite:///./var/scorecard.db")
    monkeypatch.setenv("CXOPS_FEEDBACK_DATABASE_URL", "sqlite+aiosqlite:///./var/feedback.db")
    monkeypatch.setenv("CXOPS_SCORECARD_OUTBOX_BATCH_SIZE", "50")

    settings: ScorecardSettings = create_app().state.settings

    assert settings.database_url == "sqlite+aiosqlite:///./var/scorecard.db"
    assert settings.outbox_batch_size == 50


def test_production_refuses_the_development_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CXOPS_SCORECARD_SIGNING_SECRET", raising=False)
    monkeypatch.setenv("CXOPS_SCORECARD_ENVIRONMENT", "production")

    with pytest.raises(ValidationError, match="signing_secret"):
        ScorecardSettings()

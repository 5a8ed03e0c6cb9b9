"""The baseline for ``intake.py``: a textbook FastAPI + SQLModel endpoint, as the FastAPI tutorial
("SQL (Relational) Databases") writes one, that validates the same body as
``POST /v1/feedback/responses`` and inserts one row into SQLite.

One uvicorn process, no gateway, no authentication, no outbox, no events: what one hop costs when
it is written the way most FastAPI services are. The database file is ``TEXTBOOK_DATABASE``.
"""

import os
import uuid
from datetime import datetime
from typing import Annotated

from fastapi import Depends, FastAPI
from sqlmodel import Field, Session, SQLModel, create_engine

from cxops.feedback.schemas import ResponseCreate


class Response(SQLModel, table=True):
    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    kind: str
    score: int
    comment: str | None = None
    customer_ref: str
    channel: str
    occurred_at: datetime | None = None


engine = create_engine(
    f"sqlite:///{os.environ['TEXTBOOK_DATABASE']}", connect_args={"check_same_thread": False}
)
if os.environ.get("TEXTBOOK_WAL"):
    with engine.connect() as connection:
        connection.exec_driver_sql("PRAGMA journal_mode=WAL")
        connection.exec_driver_sql("PRAGMA synchronous=NORMAL")
SQLModel.metadata.create_all(engine)


def get_session():  # type: ignore[no-untyped-def]
    with Session(engine) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]

app = FastAPI()


@app.post("/responses", status_code=201)
def create_response(body: ResponseCreate, session: SessionDep) -> Response:
    response = Response.model_validate(body.model_dump())
    session.add(response)
    session.commit()
    session.refresh(response)
    return response

"""GET /v1/feedback and POST /v1/feedback/{id}/review: the review queue of rated answers.

(POST /v1/feedback, which records a rating, and /v1/feedback/stats live in routes/native.py.)
"""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from lorebase.api.deps import services
from lorebase.api.errors import responses
from lorebase.api.protocol import RowId
from lorebase.feedback.review import FeedbackReview

router = APIRouter()


class ReviewRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a misspelt "corection" must not pass as a rejection

    action: Literal["accept", "reject"]
    correction: str | None = Field(None, description="Required to accept: the answer the model should have given.")
    reviewer: str | None = Field(None, max_length=256)
    note: str | None = Field(None, max_length=4000)


def _review(request: Request) -> FeedbackReview:
    svc = services(request)
    return FeedbackReview(svc.settings, svc.store)


@router.get("/v1/feedback")
async def feedback_queue(
    request: Request,
    status: Literal["pending", "accepted", "rejected", "all"] = "pending",
    rating: Literal["down", "up", "all"] = "down",
    limit: int = 50,
) -> dict[str, Any]:
    data = await asyncio.to_thread(_review(request).list_queue, status, rating, limit)
    return {"object": "list", "data": data}


@router.post("/v1/feedback/{feedback_id}/review", responses=responses(404, 409))
async def review_feedback(feedback_id: RowId, req: ReviewRequest, request: Request) -> dict[str, Any]:
    reviewer = req.reviewer or "api"
    result = await asyncio.to_thread(_review(request).review, feedback_id, req.action, req.correction, reviewer, req.note)
    return {"object": "feedback.review", **result}

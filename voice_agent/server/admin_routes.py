"""The admin and tooling routes: explain, quality score, run-time flags, cache flush, ingest."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, Field

from voice_agent.call.plan import BUDGET_FLAGS, overridden_by_flows
from voice_agent.errors import ExplainError, FlagError, FleetUnavailable, KnowledgeBaseError
from voice_agent.flags import FlagsPatch
from voice_agent.frontends.frames import SpokenText
from voice_agent.rag.documents import Document
from voice_agent.server.access import LOCAL
from voice_agent.server.admin import after_ingest, flush_cache, score
from voice_agent.server.explain import explain
from voice_agent.server.service import Service
from voice_agent.server.state import app_state

MAX_INGEST_DOCUMENTS = 1000


class IngestDocument(BaseModel):
    id: str = Field(min_length=1, max_length=256)
    title: str | None = Field(default=None, max_length=512)
    text: str = Field(min_length=1, max_length=200_000)


class ExplainBody(BaseModel):
    text: SpokenText = Field(max_length=2000)
    flow: str | None = None
    state: str | None = None
    call_id: str = Field(default="", max_length=128)  # the canary bucket to explain for


class QualityBody(BaseModel):
    question: str = Field(min_length=1, max_length=2000)
    answer: str = Field(min_length=1, max_length=8000)
    context: str | list[str] | None = Field(default=None)


class IngestBody(BaseModel):
    documents: list[IngestDocument] = Field(min_length=1, max_length=MAX_INGEST_DOCUMENTS)


router = APIRouter()


@router.post("/v1/explain")
async def explain_text(body: ExplainBody, request: Request) -> dict[str, Any]:
    try:
        return await explain(
            app_state(request).service, body.text, body.flow, body.state, body.call_id
        )
    except ExplainError as exc:
        raise HTTPException(status_code=422, detail=str(exc)) from exc


@router.post("/v1/quality/score")
async def quality_score(body: QualityBody, request: Request) -> dict[str, Any]:
    """Why an answer scores what it scores: the total and each part."""
    svc = app_state(request).service
    return await score(svc, body.question, body.answer, body.context)


@router.get("/v1/admin/flags")
async def get_flags(request: Request) -> dict[str, Any]:
    svc = app_state(request).service
    return svc.flags.as_dict()


@router.patch("/v1/admin/flags")
async def patch_flags(patch: FlagsPatch, request: Request) -> dict[str, Any]:
    """Change flags from the next turn on, on every process of the fleet when it shares them
    through Redis (503, nothing changed, when Redis cannot take the change); the audit log
    names the admin key that did it. A flow's own budget wins over a budget flag: a PATCH of
    one that every answering state overrides is refused (409), and one that some override
    says which (`overridden_in`)."""
    svc = app_state(request).service
    who = str(getattr(request.state, "api_key", LOCAL))
    overridden = budget_overrides(svc, patch)
    try:
        if svc.fleet_flags is not None:
            await svc.fleet_flags.change(patch, who)
        else:
            svc.flags.change(patch, who)
    except FleetUnavailable as exc:
        raise HTTPException(status_code=503, detail=str(exc)) from exc
    except FlagError as exc:
        raise HTTPException(status_code=422, detail=str(exc)) from exc
    except OSError as exc:
        detail = f"the audit log cannot be written ({exc}); the change was not made"
        raise HTTPException(status_code=503, detail=detail) from exc
    body = svc.flags.as_dict()
    if overridden:
        body["overridden_in"] = overridden
    return body


def budget_overrides(svc: Service, patch: FlagsPatch) -> dict[str, list[str]]:
    """For each budget flag in `patch`, the answering states whose own value wins over it;
    HTTP 409 when that is every one of them: the change would do nothing."""
    found = {}
    for flag in BUDGET_FLAGS:
        if getattr(patch, flag) is None:
            continue
        own, answering = overridden_by_flows(svc.flows.flows.values(), flag)
        if own and len(own) == answering:
            raise HTTPException(
                status_code=409,
                detail=f"{flag} would change nothing: every answering state sets its own "
                f"({', '.join(own)}), and a flow's value wins over the flag",
            )
        if own:
            found[flag] = own
    return found


@router.post("/v1/admin/cache/flush")
async def flush(request: Request) -> dict[str, object]:
    svc = app_state(request).service
    return await flush_cache(svc)


@router.post("/v1/ingest")
async def ingest(body: IngestBody, request: Request) -> dict[str, object]:
    svc = app_state(request).service
    docs = [
        Document(d.id.strip(), (d.title or d.id).strip(), d.text.strip()) for d in body.documents
    ]
    try:
        index = await svc.knowledge.add(docs)
    except KnowledgeBaseError as exc:
        raise HTTPException(status_code=422, detail=str(exc)) from exc
    dropped = await after_ingest(svc)
    return {
        "added": len(docs),
        "documents": svc.knowledge.document_count,
        "chunks": len(index.chunks),
        "version": index.version,
        "fingerprint": svc.knowledge.fingerprint,
        "cache_dropped": dropped,
    }


def admin_router() -> APIRouter:
    """This module's routes, for the app to include."""
    return router

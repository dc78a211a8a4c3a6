"""Playbook endpoints (read-only: playbooks are data files in the repository)."""

from fastapi import APIRouter, HTTPException

from outrider_tracker.playbook import service
from outrider_tracker.playbook.models import Playbook

router = APIRouter(prefix="/v1/playbooks", tags=["playbooks"])


@router.get("", summary="Every playbook")
async def list_playbooks() -> list[Playbook]:
    return list(service.get_all().values())


@router.get("/{playbook_id}", summary="One playbook", responses={404: {"description": "No such playbook"}})
async def get_playbook(playbook_id: str) -> Playbook:
    playbook = service.get(playbook_id=playbook_id)
    if playbook is None:
        raise HTTPException(404, f"playbook {playbook_id} not found")
    return playbook

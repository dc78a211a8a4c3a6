"""Loading playbooks and the pure rules of moving through them."""

import tomllib
from functools import cache
from pathlib import Path

from outrider_tracker.playbook.models import Playbook, Stage

DATA = Path(__file__).parent / "data"


@cache
def get_all() -> dict[str, Playbook]:
    """Every playbook shipped in `data/`, validated (a broken file stops the service at start)."""
    books = [Playbook.model_validate(tomllib.loads(p.read_text())) for p in sorted(DATA.glob("*.toml"))]
    return {b.id: b for b in books}


def get(*, playbook_id: str) -> Playbook | None:
    """The playbook with this id, or None."""
    return get_all().get(playbook_id)


def stage_ids() -> list[str]:
    """The id of every stage of every playbook, sorted."""
    return sorted({s.id for b in get_all().values() for s in b.stages})


def missing_exit_criteria(stage: Stage, done: set[str]) -> list[str]:
    """Titles of the exit criteria of `stage` not yet done, in checklist order."""
    titles = {i.id: i.title for i in stage.checklist}
    return [titles[c] for c in stage.exit_criteria if c not in done]

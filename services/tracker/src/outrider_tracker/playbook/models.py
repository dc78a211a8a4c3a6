"""Playbooks: the stages an engagement goes through, validated when loaded from `data/*.toml`."""

from typing import Literal, Self

from pydantic import BaseModel, Field, model_validator

AutoCheck = Literal["logs_received", "logs_analysed"]


class ChecklistItem(BaseModel):
    """One thing to do in a stage; `auto` items complete themselves from the engagement's data."""

    id: str = Field(pattern=r"^[a-z0-9_]+$")
    title: str = Field(min_length=1)
    auto: AutoCheck | None = Field(None, description="Completed by the data: ingest saw logs, or stats exist.")


class Stage(BaseModel):
    """A stage with its checklist and the items that must be done to leave it."""

    id: str = Field(pattern=r"^[a-z0-9_]+$")
    name: str
    expected_days: int = Field(gt=0, description="How long the stage usually takes; longer counts as stalled.")
    touchpoint_cadence_days: int = Field(gt=0)
    checklist: list[ChecklistItem]
    exit_criteria: list[str] = Field(description="Checklist item ids that must be done before advancing.")

    @model_validator(mode="after")
    def _criteria_are_items(self) -> Self:
        ids = [i.id for i in self.checklist]
        if len(set(ids)) != len(ids):
            raise ValueError(f"stage {self.id}: duplicate checklist item ids")
        unknown = set(self.exit_criteria) - set(ids)
        if unknown:
            raise ValueError(f"stage {self.id}: exit criteria name unknown items {sorted(unknown)}")
        return self


class Playbook(BaseModel):
    """An ordered list of stages."""

    id: str = Field(pattern=r"^[a-z0-9-]+$")
    name: str
    description: str
    reminder_lead_hours: float = Field(24, gt=0, description="How long before a touchpoint its reminder goes out.")
    stages: list[Stage] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_stages(self) -> Self:
        ids = [s.id for s in self.stages]
        if len(set(ids)) != len(ids):
            raise ValueError(f"playbook {self.id}: duplicate stage ids")
        return self

    def stage(self, stage_id: str) -> Stage:
        """The stage with this id (KeyError when unknown)."""
        for stage in self.stages:
            if stage.id == stage_id:
                return stage
        raise KeyError(stage_id)

    def next_stage(self, stage_id: str) -> Stage | None:
        """The stage after `stage_id`, or None at the last one."""
        ids = [s.id for s in self.stages]
        i = ids.index(stage_id)
        return self.stages[i + 1] if i + 1 < len(ids) else None

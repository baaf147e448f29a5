"""What one stage of `meshready check` reports. A neutral module: every stage (validate,
analyze, gitops) builds a StageReport, and only the check command imports the stages."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from meshready.config import RepoConfig
    from meshready.render import RenderResult


@dataclass
class StageReport:
    """What one check stage found across all rendered targets."""

    name: str
    failures: int = 0  # problems that fail the job
    lines: list[str] = field(default_factory=list)  # one line per problem, printed in full
    per_target: dict[str, str] = field(default_factory=dict)  # target -> short status cell
    summary: str = ""


# A stage takes the successful render results and the repo config.
Stage = Callable[[list["RenderResult"], "RepoConfig"], StageReport]

"""Errors that the CLI turns into a clean message and an exit code, never a traceback.

Exit codes are part of the product's contract: 0 ok, 1 failure, 2 invalid input.
"""

from __future__ import annotations

from dataclasses import dataclass, field

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_INVALID_INPUT = 2


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input file, located as precisely as we can."""

    file: str
    line: int | None
    column: int | None
    path: str
    message: str

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class SkyError(Exception):
    """An expected failure: the CLI prints ``str(self)`` and exits with ``exit_code``."""

    exit_code = EXIT_FAILURE


class InvalidInput(SkyError):
    """Bad user input (a spec, a fleet file, a flag). Carries every problem found, not just the first."""

    exit_code = EXIT_INVALID_INPUT

    def __init__(self, problems: list[Problem] | str):
        if isinstance(problems, str):
            problems = [Problem(file="", line=None, column=None, path="", message=problems)]
        self.problems: list[Problem] = problems
        super().__init__("\n".join(str(p) for p in problems))


@dataclass
class FieldIssues(ValueError):
    """Raised from a pydantic model validator to report errors on specific sub-fields.

    Pydantic reports a model validator's error at the model's own location; this carries the
    sub-path of each problem so the error formatter can point at the exact key and line.
    """

    issues: list[tuple[tuple[str | int, ...], str]] = field(default_factory=list)

    def __str__(self) -> str:
        return "; ".join(f"{'.'.join(map(str, p))}: {m}" if p else m for p, m in self.issues)

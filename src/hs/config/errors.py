"""Configuration errors that name the offending key, so startup can report them plainly."""

from __future__ import annotations


class ConfigError(Exception):
    """One or more invalid settings; ``problems`` lists ``(key path, message)`` pairs."""

    def __init__(self, problems: list[tuple[str, str]], path: str | None = None) -> None:
        self.problems = problems
        self.path = path
        super().__init__(self.render())

    def render(self) -> str:
        where = f" in {self.path}" if self.path else ""
        lines = [f"Invalid configuration{where}:"]
        lines += [f"  {key}: {message}" for key, message in self.problems]
        return "\n".join(lines)

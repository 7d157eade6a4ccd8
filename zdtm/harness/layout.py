"""Where the suite's files live."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Layout:
    """Paths of the suite, derived from the zdtm directory."""

    zdtm: Path
    static_dir: Path | None = None  # --zdtm-static=DIR: the scenarios are there (external.py)

    @classmethod
    def here(cls) -> "Layout":
        return cls(Path(__file__).resolve().parent.parent)

    @property
    def repo(self) -> Path:
        return self.zdtm.parent

    @property
    def static(self) -> Path:
        return self.static_dir or self.zdtm / "static"

    @property
    def external(self) -> bool:
        """The scenarios are another directory's (--zdtm-static)."""
        return self.static_dir is not None

    @property
    def apps(self) -> Path:
        """zdtm/apps: real programs, one driver NAME.py each (apps.py)."""
        return self.zdtm / "apps"

    @property
    def work(self) -> Path:
        return self.zdtm / "work"

    @property
    def required_list(self) -> Path:
        return self.zdtm / "required.txt"

    def workdir(self, flavor: str, name: str) -> Path:
        return self.work / flavor / name

    def is_app_source(self, path: Path) -> bool:
        return (path.suffix == ".py" and not path.name.startswith("_")
                and path.parent.resolve() == self.apps.resolve())

    def is_scenario_source(self, path: Path) -> bool:
        return path.suffix == ".c" and path.parent.resolve() == self.static.resolve()

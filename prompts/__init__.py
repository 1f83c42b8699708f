"""Prompt templates as files, loaded by name.

A template is a Markdown file with a small front matter (`name`, `version`,
`description`) and a `# system` and a `# user` part. Placeholders are `{name}`; only
the names passed to `render` are replaced, so braces in documents are left alone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

TEMPLATE_DIR = Path(__file__).parent


@dataclass(frozen=True)
class Prompt:
    name: str
    version: str
    system: str
    user: str

    @property
    def id(self) -> str:
        return f"{self.name}@v{self.version}"

    def render(self, **values: str) -> list[dict[str, str]]:
        """Chat messages with the placeholders filled in."""
        pattern = re.compile(r"\{(" + "|".join(map(re.escape, values)) + r")\}") if values else None

        def fill(text: str) -> str:
            return pattern.sub(lambda m: str(values[m.group(1)]), text) if pattern else text

        messages = [{"role": "system", "content": fill(self.system)}] if self.system else []
        return messages + [{"role": "user", "content": fill(self.user)}]


def load(name: str, directory: str | Path | None = None) -> Prompt:
    """The template `name` from `directory`, or the bundled one when `directory` has none
    (a folder of your own may override only some templates)."""
    if directory is not None and not Path(directory).is_dir():
        raise FileNotFoundError(f"The prompts folder {directory} (prompts_dir) does not exist")
    path = Path(directory or TEMPLATE_DIR) / f"{name}.md"
    if not path.exists() and directory is not None and (TEMPLATE_DIR / f"{name}.md").exists():
        path = TEMPLATE_DIR / f"{name}.md"
    if not path.exists():
        folders = {Path(directory or TEMPLATE_DIR), TEMPLATE_DIR}
        available = ", ".join(sorted({p.stem for f in folders for p in f.glob("*.md")}))
        raise FileNotFoundError(f"No prompt template {name!r} in {path.parent} (available: {available})")
    text = path.read_text(encoding="utf-8")
    meta: dict[str, str] = {}
    if text.startswith("---"):
        header, text = text[3:].split("\n---", 1)
        for line in header.strip().splitlines():
            key, _, value = line.partition(":")
            meta[key.strip()] = value.strip()
    parts = re.split(r"^# (system|user)\s*$", text, flags=re.MULTILINE)
    sections = {parts[i]: parts[i + 1].strip() for i in range(1, len(parts) - 1, 2)}
    if "user" not in sections:
        raise ValueError(f"Prompt template {path} has no '# user' part")
    return Prompt(meta.get("name", name), meta.get("version", "0"), sections.get("system", ""), sections["user"])

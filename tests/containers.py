"""Reading the Dockerfile the way docker does, for the tests that check it."""

import json
from pathlib import Path
from typing import List, Tuple

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"


def instructions(path: Path = DOCKERFILE) -> List[Tuple[str, str]]:
    """``(INSTRUCTION, arguments)`` in order: comments dropped, continued lines joined."""
    out, pending = [], ""
    for line in path.read_text().splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue  # a comment inside a continued instruction
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        text = pending + stripped
        pending = ""
        keyword, _, arguments = text.partition(" ")
        out.append((keyword.upper(), arguments.strip()))
    return out


def last(keyword: str, path: Path = DOCKERFILE) -> str:
    """The arguments of the last ``keyword`` (the one in force in the final image)."""
    return [arguments for name, arguments in instructions(path) if name == keyword][-1]


def exec_form(arguments: str) -> List[str]:
    """A JSON-array (exec form) CMD; the shell form would hide signals from twistd."""
    return json.loads(arguments)


def healthcheck_command(path: Path = DOCKERFILE) -> List[str]:
    """HEALTHCHECK's ``CMD [...]``, without its options."""
    arguments = last("HEALTHCHECK", path)
    return exec_form(arguments[arguments.index("CMD ") + 4:])

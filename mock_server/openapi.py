"""Write (or check) the committed ``openapi.json``: ``python -m mock_server.openapi [--check] [PATH]``.

The schema is generated from the mock app, which serves exactly the public API of the real server (its
storage and ``/__mock`` routes are left out of the schema). A test fails when the committed file is stale.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

__all__ = ["DEFAULT_PATH", "build", "main", "render"]

DEFAULT_PATH = Path(__file__).resolve().parents[1] / "openapi.json"


def build() -> dict[str, Any]:
    from mock_server.app import create_app

    schema: dict[str, Any] = create_app().openapi()
    return schema


def render() -> str:
    return json.dumps(build(), indent=2, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    check = "--check" in args
    paths = [a for a in args if a != "--check"]
    path = Path(paths[0]) if paths else DEFAULT_PATH
    text = render()
    if check:
        if not path.exists() or path.read_text() != text:
            print(f"{path} is stale: run `python -m mock_server.openapi`", file=sys.stderr)
            return 1
        print(f"{path} is up to date")
        return 0
    path.write_text(text)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

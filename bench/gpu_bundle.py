"""What `make gpu-wheels` stages for a lent GPU machine, and whether it fits what travels (64 MiB in all).

    python -m bench.gpu_bundle .whl      # sizes of the wheels and staged inputs, plus the working tree

The working tree travels too (tracked and untracked-not-ignored files), so the check adds it up.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

#: The device tool carries at most this much: working tree and carried paths together.
TRAVEL_LIMIT = 64 * 2**20
MIB = 2**20


def tree_bytes(repo: Path) -> int:
    """Bytes of the working tree as the device tool sends it (tracked + untracked files git does not ignore)."""
    names = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=repo, check=True, capture_output=True
    ).stdout.split(b"\0")
    return sum((repo / n.decode()).stat().st_size for n in names if n and (repo / n.decode()).is_file())


def bundle_bytes(bundle: Path) -> dict[str, int]:
    return {str(p.relative_to(bundle)): p.stat().st_size for p in sorted(bundle.rglob("*")) if p.is_file()}


def main(argv: list[str] | None = None) -> int:
    args = argv if argv is not None else sys.argv[1:]
    bundle = Path(args[0] if args else ".whl")
    repo = Path(__file__).resolve().parents[1]
    files = bundle_bytes(bundle)
    for name, size in files.items():
        print(f"  {size / MIB:7.2f} MiB  {bundle}/{name}")
    carried, tree = sum(files.values()), tree_bytes(repo)
    total = carried + tree
    print(
        f"carried {carried / MIB:.2f} MiB + working tree {tree / MIB:.2f} MiB = {total / MIB:.2f} MiB "
        f"of the {TRAVEL_LIMIT / MIB:.0f} MiB that travel ({(TRAVEL_LIMIT - total) / MIB:.2f} MiB to spare)"
    )
    if total > TRAVEL_LIMIT:
        print(
            "TOO BIG: the device tool would refuse this call; drop a wheel or a staged file", file=sys.stderr
        )
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

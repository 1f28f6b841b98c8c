"""The cost table in docs/deploy-modal.md is what its stated assumptions give from flops.json (so the
ESTIMATES stay reproducible until measured rows replace them)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tests.conftest import require_path

DOC = Path(__file__).resolve().parents[2] / "docs" / "deploy-modal.md"

#: The assumptions the document states (keep the two in step).
UTILISATION = 0.35
OVERHEAD = 1.25
FPS = 25
CONTAINER_PER_S = 4 * 0.0000131 + 16 * 0.00000222  # 4 cores + 16 GiB
GPUS = {  # peak dense FP16 tensor TFLOPS, Modal $ per GPU-second
    "L4": (121, 0.000222),
    "A10": (125, 0.000306),
    "L40S": (362, 0.000542),
    "A100-40GB": (312, 0.000583),
    "A100-80GB": (312, 0.000694),
    "H100": (989, 0.001097),
}


def documented_rows() -> dict[str, tuple[str, str, str]]:
    text = DOC.read_text()
    table = text.split("<!-- cost-table", 1)[1].split("<!-- /cost-table -->", 1)[0]
    rows = {}
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[0] in GPUS:
            rows[cells[0]] = (cells[1], cells[2], cells[3])
    return rows


def test_the_documented_estimates_follow_from_flops_json(fixtures_dir: Path) -> None:
    flops = json.loads(require_path(fixtures_dir / "flops.json").read_text())
    per_second_tflop = flops["per_output_frame"]["512px"]["total_per_frame_cfg"] * FPS / 1e12
    assert re.search(
        rf"\*\*48\.8 TFLOP per output frame, {per_second_tflop:,.0f} TFLOP per output second", DOC.read_text()
    )
    expected = {}
    for gpu, (peak, price) in GPUS.items():
        gpu_s = per_second_tflop / (peak * UTILISATION) * OVERHEAD
        expected[gpu] = (
            f"{gpu_s:.1f}",
            f"{gpu_s * 60 * price:.2f}",
            f"{gpu_s * 60 * (price + CONTAINER_PER_S):.2f}",
        )
    assert documented_rows() == expected

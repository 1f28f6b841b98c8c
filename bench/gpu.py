"""GPU numbers in one shot: a prepared benchmark that fits a short loan of an H100/H200 (≤ 8 minutes).

    bench/gpu.sh                      # on a CUDA machine: installs the carried wheels (.whl/), then runs this
    bench/gpu.sh --dry-run            # the same steps on the CPU with tiny models (< 1 minute; CI runs it)
    python -m bench.gpu --sections unet,e2e --out /tmp/gpu    # a subset, e.g. to rerun what was cut

Sections (bench/gpu_sections.py), each in its own forked process with its own time budget, so a slow or
hung section is cut without losing the others: ``unet`` (full-size random-weight U-Net forwards, fp16 and
bf16, 1.6 at 64×64 and 1.5 at 32×32 latents, batch = CFG × chunk batch; SDPA kernels from a profile),
``sampler`` (20-step CFG per chunk batch, exact and DeepCache), ``vae_audio`` (VAE encode/decode, Whisper
features), ``e2e`` (the staged pipeline on demo1, 10 s 1080p), ``compile`` (torch.compile: compile time
apart). For every row: GPU-seconds per output second, achieved TFLOP/s (flops.json) and $ per output minute
at Modal's H100 price. Written to ``--out`` (``$OUT`` on the lent machine): results.json, results.md,
profile_unet.txt (and run.log from gpu.sh).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

#: Modal's H100 price per GPU-second (docs/deploy-modal.md, "Cost"; a test keeps the two equal).
MODAL_H100_USD_PER_GPU_S = 0.001097
#: Seconds a section may overrun its budget (finishing the measurement in flight) before it is killed.
GRACE_S = 20.0


def derive(row: dict[str, Any]) -> dict[str, Any]:
    """The figures every row reports, from what it measured (the one place they are computed)."""
    seconds, output_s, flops = row["seconds"], row.get("output_s"), row.get("flops")
    gpu_s = seconds / output_s if output_s else None
    return row | {
        "gpu_s_per_output_s": gpu_s,
        "tflop_s": flops / seconds / 1e12 if flops and seconds > 0 else None,
        "usd_per_output_min": gpu_s * 60 * MODAL_H100_USD_PER_GPU_S if gpu_s is not None else None,
    }


def _fmt(value: float | None, spec: str) -> str:
    return "–" if value is None else format(value, spec)


def markdown(results: dict[str, Any]) -> str:
    env = results.get("env", {})
    peak = env.get("matmul_tflops", {})
    lines = [
        f"## {env.get('card', 'unknown device')} — {results['plan']}"
        + (
            " (DRY RUN: tiny models on the CPU, numbers mean nothing)" if results["plan"] == "dry-run" else ""
        ),
        "",
        f"torch {env.get('torch')}, CUDA {env.get('cuda', '–')}, load average {env.get('load_average', ['?'])[0]}; "
        f"measured matmul ceiling (TFLOP/s): {', '.join(f'{k} {v}' for k, v in peak.items()) or '–'}; "
        f"SDPA ops seen: {', '.join(env.get('sdpa_ops', [])) or '–'}; $ at Modal's H100 price "
        f"${MODAL_H100_USD_PER_GPU_S}/GPU-s.",
        "",
        "| section | what | median s | GPU-s per output s | TFLOP/s | % of matmul ceiling | $ per output min |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for row in results["rows"]:
        ceiling = peak.get(row.get("dtype", ""))
        share = row["tflop_s"] / ceiling * 100 if row["tflop_s"] and ceiling else None
        lines.append(
            f"| {row['section']} | {row['name']} | {row['seconds']:.4f} | {_fmt(row['gpu_s_per_output_s'], '.3f')} "
            f"| {_fmt(row['tflop_s'], '.1f')} | {_fmt(share, '.0f')} | {_fmt(row['usd_per_output_min'], '.4f')} |"
        )
    for row in results["rows"]:
        if row["section"] == "e2e":
            stages = ", ".join(f"{k} {v:.2f}" for k, v in row["stages_s"].items() if v)
            lines.append(
                f"\n{row['name']}: {row['frames']} frames, wall {row['seconds']:.2f} s, GPU busy "
                f"{_fmt(row.get('gpu_busy_fraction'), '.2f')}, peak GPU memory "
                f"{_fmt(row.get('gpu_peak_mem_gib'), '.1f')} GiB, chunk batch {row.get('chunk_batch')}; "
                f"stage busy s: {stages}"
            )
        if "compile_s" in row:
            lines.append(f"\n{row['name']}: compile {row['compile_s']:.1f} s (not in the forward time)")
    for name, section in results["sections"].items():
        for text in section.get("notes", []):
            lines.append(f"\n- {name}: {text}")
        for text in section.get("skipped", []):
            lines.append(f"\n- {name} skipped {text}")
        if section.get("status") != "ok":
            lines.append(f"\n- {name}: {section.get('status')}")
    return "\n".join(lines) + "\n"


def _cuda_probe() -> None:
    import torch

    torch.zeros(1, device="cuda").add_(1).item()


def start_method(device: str) -> str:
    """ "fork" (sections start in milliseconds, with torch already imported) unless CUDA would break in a
    forked child: the parent must not have initialised CUDA, and a forked probe must be able to use it.
    Otherwise "spawn" (each section re-imports torch: seconds, but safe)."""
    if device != "cuda":
        return "fork"
    import torch

    if torch.cuda.is_initialized():
        return "spawn"
    probe = multiprocessing.get_context("fork").Process(target=_cuda_probe)
    probe.start()
    probe.join(120)
    if probe.is_alive():
        probe.kill()
        probe.join()
    return "fork" if probe.exitcode == 0 else "spawn"


def _child(name: str, plan_name: str, budget_s: float, result: str, out_dir: str) -> None:
    from bench.gpu_sections import PLANS, run_section

    run_section(name, PLANS[plan_name], budget_s, Path(result), Path(out_dir))


def run(
    plan_name: str, sections: list[str], out_dir: Path, total_budget_s: float | None = None
) -> dict[str, Any]:
    # Imported once here (no CUDA is touched in this process), so forked sections start in milliseconds
    # instead of re-importing torch, diffusers and transformers each time.
    from bench.gpu_sections import PLANS, preimport

    preimport()
    plan = PLANS[plan_name]
    total_budget_s = plan.total_budget_s if total_budget_s is None else total_budget_s
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    results: dict[str, Any] = {"plan": plan_name, "env": {}, "sections": {}, "rows": []}
    context = multiprocessing.get_context(start_method(plan.device))
    results["start_method"] = context.get_start_method()
    with tempfile.TemporaryDirectory(prefix="bench-gpu-") as tmp:
        for name in sections:
            left = total_budget_s - (time.monotonic() - started)
            budget = min(plan.budgets[name], left)
            if budget < 5:
                results["sections"][name] = {"status": f"not run: {left:.0f} s of the run's budget left"}
                continue
            print(f"[{name}] budget {budget:.0f} s", file=sys.stderr, flush=True)
            result = Path(tmp) / f"{name}.json"
            t = time.monotonic()
            process = context.Process(
                target=_child, args=(name, plan_name, budget, str(result), str(out_dir))
            )
            process.start()
            process.join(budget + GRACE_S)
            if process.is_alive():
                process.kill()
                process.join()
                status = f"killed after {budget + GRACE_S:.0f} s (its budget); rows measured before are kept"
            else:
                status = (
                    "ok" if process.exitcode == 0 else f"failed (exit code {process.exitcode}): see run.log"
                )
            data = json.loads(result.read_text()) if result.is_file() else {"rows": []}
            data["status"], data["wall_s"] = status, round(time.monotonic() - t, 1)
            results["sections"][name] = data
            results["env"] = results["env"] | data.get("env", {})
            results["rows"] += [derive(row) for row in data.pop("rows")]
            results["wall_s"] = round(time.monotonic() - started, 1)
            (out_dir / "results.json").write_text(json.dumps(results, indent=1, default=str))
            (out_dir / "results.md").write_text(markdown(results))
            print(f"[{name}] {status} in {data['wall_s']} s", file=sys.stderr, flush=True)
    return results


def main(argv: list[str] | None = None) -> int:
    # torch.cuda.is_available() then asks NVML instead of initialising CUDA, which a forked section could
    # not use again (see start_method). Set before torch is imported.
    os.environ.setdefault("PYTORCH_NVML_BASED_CUDA_CHECK", "1")
    from bench.gpu_sections import SECTIONS

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dry-run", action="store_true", help="tiny models on the CPU: checks the plumbing")
    p.add_argument(
        "--out", type=Path, default=Path("bench/out"), help="where results go ($OUT on the lent machine)"
    )
    p.add_argument(
        "--sections", default=",".join(SECTIONS), help=f"comma-separated subset of {','.join(SECTIONS)}"
    )
    p.add_argument("--total-budget-s", type=float, help="seconds for the whole run (default: 450 on a GPU)")
    args = p.parse_args(argv)
    sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = sorted(set(sections) - set(SECTIONS))
    if unknown:
        p.error(f"--sections: unknown {unknown}; choose from {', '.join(SECTIONS)}")
    results = run("dry-run" if args.dry_run else "gpu", sections, args.out, args.total_budget_s)
    print(markdown(results))
    failed = [n for n, s in results["sections"].items() if s.get("status") != "ok"]
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())

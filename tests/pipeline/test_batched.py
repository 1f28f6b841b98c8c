"""Chunk batches: several chunks per U-Net call give the sequential loop's frames (up to float rounding),
progress still advances step by step, and ``chunk_batch="auto"`` follows the memory it is given."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from contracts import RunOptions
from lipsync import LipSync
from lipsync.engine.releases import unet_config_for
from lipsync.pipeline import ProgressEvent
from lipsync.pipeline.batching import ChunkMemory, batch_for_memory
from lipsync.pipeline.driver import DriverConfig
from tests.pipeline.clips import face_clip, speech
from tests.pipeline.test_staged import assert_all_ended, sequential_frames, torch_threads

STEPS = {"inference_steps": 2, "guidance_scale": 1.0}
MIB = 2**20


@pytest.fixture
def lipsync(tiny_models, mediapipe_detector) -> LipSync:  # type: ignore[no-untyped-def]
    return LipSync(version="1.5", models=tiny_models, detector=mediapipe_detector)


@pytest.fixture
def three_chunks(media_dir: Path, tmp_path: Path) -> tuple[Path, Path]:
    """Ping-pong of 16 frames with faces in 0-3 and 14-15: chunks 0 and 1 both have 6 faces, chunk 2 has 2."""
    video = face_clip(media_dir, tmp_path / "v16.mp4", frames=16, no_face=range(4, 14))
    return video, speech(media_dir, tmp_path / "a13.wav", 1.3)


def test_two_chunks_in_one_unet_call_match_one_at_a_time(
    lipsync: LipSync, three_chunks: tuple[Path, Path]
) -> None:
    # Chunks 0 and 1 (6 faces each) share one U-Net call, chunk 2 (2 faces) has its own.
    video, audio = three_chunks
    want, _ = sequential_frames(lipsync, video, audio, **STEPS)

    events: list[ProgressEvent] = []
    job = lipsync.prepare(video, audio, progress=events.append, **STEPS)
    # The GPU layout (a worker per model stage; the U-Net's queue holds a whole batch) on the CPU.
    run = job.drive(DriverConfig(chunk_batch=2, model_threads=1, split_model=True))
    got = list(run.frames())
    assert run.stats.unet_batches == [2, 1]
    assert_all_ended(run.runner)

    assert len(got) == len(want) == 34
    worst = max(
        int(np.abs(a.astype(np.int16) - b.astype(np.int16)).max()) for a, b in zip(got, want, strict=True)
    )
    changed = sum(int((a != b).any(axis=-1).sum()) for a, b in zip(got, want, strict=True))
    pixels = sum(a.shape[0] * a.shape[1] for a in want)
    assert worst <= 1 and changed <= pixels * 1e-3, f"max diff {worst}, {changed} pixels changed"

    # Progress over a batch advances by chunk-steps: the pair's two steps end at chunks 0 and 1.
    diffuse = [(e.chunk, e.step) for e in events if e.stage == "diffuse"]
    assert diffuse == [(0, 2), (1, 2), (2, 1), (2, 2)]
    fractions = [e.fraction for e in events]
    assert fractions == sorted(fractions)


def test_auto_batch_is_what_fits_after_the_reserve() -> None:
    memory = ChunkMemory(unet=3000 * MIB, vae=800 * MIB, pixels=12 * MIB)
    reserve = 1024 * MIB + 2 * memory.vae + 16 * memory.pixels

    def free_for(chunks: float) -> int:
        return int(reserve + chunks * memory.unet / 0.9)

    assert batch_for_memory(free_for(0.5), memory) == 1  # never below one
    assert batch_for_memory(free_for(2.5), memory) == 2
    assert batch_for_memory(free_for(3.0) + MIB, memory) == 3
    assert batch_for_memory(free_for(40), memory) == 4  # capped
    assert batch_for_memory(free_for(40), memory, max_batch=8) == 8


def test_auto_is_one_chunk_on_the_cpu_and_a_number_is_taken_as_given(tiny_models) -> None:  # type: ignore[no-untyped-def]
    assert LipSync(version="1.5").tuning.chunk_batch(tiny_models, do_cfg=True) == 1
    assert LipSync(version="1.5", chunk_batch=3).tuning.chunk_batch(tiny_models, do_cfg=True) == 3


def test_chunks_side_by_side_give_the_one_at_a_time_frames(
    lipsync: LipSync, three_chunks: tuple[Path, Path]
) -> None:
    # Chunks 0 and 1 sampled at once on two threads, then 2.
    video, audio = three_chunks
    want, _ = sequential_frames(lipsync, video, audio, **STEPS)

    events: list[ProgressEvent] = []
    job = lipsync.prepare(video, audio, progress=events.append, **STEPS)
    # One model thread, so that each chunk's call runs at the inline mode's single thread (float rounding
    # depends on the thread count) while two chunks run at once.
    run = job.drive(DriverConfig(chunk_batch=2, model_threads=1, parallel_chunks=2))
    got = list(run.frames())
    assert run.stats.unet_batches == [1, 1, 1]  # one-chunk calls only
    assert_all_ended(run.runner)
    # Each chunk is the one-chunk call at one torch thread, as in the inline mode: the very same frames.
    assert len(got) == len(want) == 34
    assert all(np.array_equal(a, b) for a, b in zip(got, want, strict=True))

    diffuse = [(e.chunk, e.step) for e in events if e.stage == "diffuse"]
    assert diffuse[-1] == (2, 2)
    fractions = [e.fraction for e in events]
    assert fractions == sorted(fractions)


def test_a_small_unet_on_a_multi_core_cpu_diffuses_a_chunk_per_core(tiny_models) -> None:  # type: ignore[no-untyped-def]
    options = RunOptions()
    with torch_threads(2):
        auto = LipSync(version="1.5").tuning.driver_config(tiny_models, options)
        given = LipSync(version="1.5", chunk_batch=1).tuning.driver_config(tiny_models, options)
        official = dataclasses.replace(tiny_models, unet_config=unet_config_for("1.5"))
        big = LipSync(version="1.5").tuning.driver_config(official, options)
    with torch_threads(1):
        one_core = LipSync(version="1.5").tuning.driver_config(tiny_models, options)
    assert (auto.chunk_batch, auto.parallel_chunks) == (2, 2)
    assert (given.chunk_batch, given.parallel_chunks) == (1, 1)  # a chunk batch asked for is kept
    assert (big.chunk_batch, big.parallel_chunks) == (1, 1)  # the official U-Net's ops use the cores
    assert (one_core.chunk_batch, one_core.parallel_chunks) == (1, 1)

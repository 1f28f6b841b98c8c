"""The driver: the runner's guarantees (order, error propagation, cancellation, bounded memory, per-stage
torch threads), then the lip-sync job on it: the threaded mode gives the inline mode's frames, typed failures
with every worker joined, and back-pressure from a slow encoder, counted rather than timed."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from lipsync import LipSync
from lipsync.errors import InputError, JobCancelled, NoFaceDetected
from lipsync.pipeline import ProgressEvent
from lipsync.pipeline.driver import DriverConfig, RunCounters
from lipsync.pipeline.staged import Stage, StageRunner
from lipsync.pipeline.stages import faces_to_pixels
from tests.pipeline.clips import face_clip, inspect_output, psnr, speech

#: Bounded waits: generous deadlines that only matter when something is broken.
DEADLINE_S = 120.0
FAST: dict[str, Any] = {"inference_steps": 1, "guidance_scale": 1.0}


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Some torch CPU kernels round differently with another intra-op thread count; equality tests run the
    inline mode with the same single thread the threaded mode gives its stages."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def assert_all_ended(runner: StageRunner | None) -> None:
    assert runner is not None and runner.threads, "the runner never started"
    for thread in runner.threads:
        thread.join(DEADLINE_S)
        assert not thread.is_alive(), f"worker {thread.name} is still running"


def wait_until_stalled(runner: StageRunner | None) -> None:
    """With the consumer stalled, wait until every worker is blocked on a full queue, from the last one back:
    once the stage after a queue is blocked for good, a producer blocked on that queue is blocked for good."""
    assert runner is not None
    for channel in reversed(runner.channels):
        assert channel.wait_for_blocked_put(DEADLINE_S), f"the producer into {channel.name!r} never blocked"


# --- the runner ----------------------------------------------------------------------------------------------


def count_to(n: int, produced: list[int]) -> Any:
    def source(_: Any) -> Iterator[int]:
        for i in range(n):
            produced.append(i)
            yield i

    return source


def add(k: int) -> Any:
    def stage(items: Iterator[int]) -> Iterator[int]:
        for item in items:
            yield item + k

    return stage


def pairs(items: Iterator[int]) -> Iterator[int]:
    """A batching stage: takes two, then yields both."""
    held: list[int] = []
    for item in items:
        held.append(item)
        if len(held) == 2:
            yield from held
            held = []
    yield from held


def test_runner_keeps_order_and_ends_its_threads() -> None:
    produced: list[int] = []
    runner = StageRunner(
        [Stage("source", count_to(50, produced)), Stage("plus1", add(1)), Stage("pairs", pairs, holds=2)],
        capacity=2,
    )
    assert list(runner.results()) == [i + 1 for i in range(50)]
    assert_all_ended(runner)
    assert runner.error is None and runner.max_in_flight <= runner.in_flight_bound


def test_a_failing_stage_stops_every_worker_and_raises_its_error() -> None:
    produced: list[int] = []

    def explode_at_7(items: Iterator[int]) -> Iterator[int]:
        for item in items:
            if item == 7:
                raise KeyError("item 7")
            yield item

    runner = StageRunner(
        [Stage("source", count_to(10_000, produced)), Stage("explode", explode_at_7), Stage("plus1", add(1))]
    )
    got: list[int] = []
    with pytest.raises(KeyError, match="item 7"):
        for item in runner.results():
            got.append(item)
    assert got == [i + 1 for i in range(len(got))] and len(got) <= 7
    assert runner.failed_stage == "explode"
    assert_all_ended(runner)
    assert len(produced) < 10_000  # the source was stopped, not drained


def test_a_consumer_that_stops_early_cancels_the_workers() -> None:
    produced: list[int] = []
    runner = StageRunner([Stage("source", count_to(10_000, produced)), Stage("plus1", add(1))])
    with closing(runner.results()) as results:
        assert [next(results) for _ in range(3)] == [1, 2, 3]
    assert_all_ended(runner)
    assert runner.error is None and len(produced) < 10_000


def test_a_slow_consumer_stalls_the_source_within_the_bound() -> None:
    produced: list[int] = []
    runner = StageRunner(
        [Stage("source", count_to(200, produced)), Stage("plus1", add(1)), Stage("pairs", pairs, holds=2)],
        capacity=3,
    )
    results = runner.results()
    first = next(results)  # starts the workers; the consumer now holds one item and stalls
    wait_until_stalled(runner)
    # Channels full, every stage holding what it may: exactly the bound (the consumer holds one item).
    assert runner.in_flight == runner.in_flight_bound == 3 * 3 + (1 + 1 + 2) + 1
    assert len(produced) < 200
    rest = list(results)
    assert [first, *rest] == [i + 1 for i in range(200)]
    assert runner.max_in_flight == runner.in_flight_bound
    assert_all_ended(runner)


def test_each_stage_computes_with_its_own_torch_thread_count() -> None:
    # torch initialises a thread's OpenMP count lazily, from the process-wide value the last
    # set_num_threads() left: the 2-thread stage must keep its 2 after a 1-thread stage has set 1.
    others_set = threading.Event()
    seen: list[int] = []

    def model(_: Any) -> Iterator[int]:
        assert others_set.wait(DEADLINE_S)
        torch.ones(1 << 16).sum()  # a first parallel op on this thread
        seen.append(torch.get_num_threads())
        yield 1

    def media(items: Iterator[int]) -> Iterator[int]:
        others_set.set()
        seen.append(torch.get_num_threads())
        yield from items

    runner = StageRunner([Stage("model", model, torch_threads=2), Stage("media", media, torch_threads=1)])
    assert list(runner.results()) == [1]
    assert sorted(seen) == [1, 2]
    assert_all_ended(runner)


# --- the lip-sync job ----------------------------------------------------------------------------------------


@pytest.fixture
def lipsync(tiny_models, mediapipe_detector) -> LipSync:  # type: ignore[no-untyped-def]
    return LipSync(version="1.5", models=tiny_models, detector=mediapipe_detector)


@pytest.fixture(scope="module")
def replay_clip(tmp_path_factory: pytest.TempPathFactory, media_dir: Path) -> tuple[Path, Path]:
    """16 frames, faces in 0-3 and 14-15 only (the model runs on 6 frames a chunk: cheap), and 1.3 s of
    speech: 34 output frames of ping-pong, three chunks (forward pass, backward replay, 2 frames)."""
    tmp = tmp_path_factory.mktemp("staged")
    video = face_clip(media_dir, tmp / "v16.mp4", frames=16, no_face=range(4, 14))
    return video, speech(media_dir, tmp / "a13.wav", 1.3)


def sequential_frames(
    ls: LipSync, video: Path, audio: Path, **options: Any
) -> tuple[list[np.ndarray], RunCounters]:
    """The inline mode's frames and counters (one torch thread, as the threaded mode's stages here)."""
    run = ls.prepare(video, audio, **options).drive(DriverConfig(mode="inline"))
    with torch_threads(1):
        return list(run.frames()), run.counters


def test_crops_go_to_the_device_as_the_reference_pixels() -> None:
    crops = [np.random.default_rng(i).integers(0, 256, (8, 8, 3), dtype=np.uint8) for i in range(3)]
    # The reference's arithmetic (torch promotes uint8 / 255.0 to float32), step by step in numpy.
    x = np.stack(crops).transpose(0, 3, 1, 2).astype(np.float32) / np.float32(255.0)
    want = (x - np.float32(0.5)) / np.float32(0.5)
    assert np.array_equal(faces_to_pixels(crops, torch.device("cpu")).numpy(), want)
    assert torch.equal(faces_to_pixels(crops, torch.device("cpu")), faces_to_pixels(crops))


@pytest.mark.parametrize("split_model", [False, True], ids=["cpu-layout", "gpu-layout"])
def test_threaded_frames_are_the_inline_frames(
    lipsync: LipSync, replay_clip: tuple[Path, Path], split_model: bool
) -> None:
    video, audio = replay_clip
    want, inline_counts = sequential_frames(lipsync, video, audio, **FAST)
    job = lipsync.prepare(video, audio, **FAST)
    run = job.drive(DriverConfig(chunk_batch=1, model_threads=1, split_model=split_model))
    assert run.runner is not None
    workers = [stage.name for stage in run.runner.stages]
    model = ["vae_encode", "diffuse", "vae_decode"] if split_model else ["model"]
    assert workers == ["decode", "align", *model, "paste"]
    got = list(run.frames())
    assert len(got) == len(want) == 34
    for i, (a, b) in enumerate(zip(got, want, strict=True)):
        assert np.array_equal(a, b), f"frame {i} differs"
    assert run.counters == inline_counts
    assert run.counters.frames_without_face == 10 + 10  # each pass over frames 4-13 (the tail has faces)
    assert run.counters.frames_done == 34
    assert run.stats.unet_batches == [1, 1, 1]
    assert_all_ended(run.runner)


def test_run_writes_the_same_video_either_way(
    tiny_models,  # type: ignore[no-untyped-def]
    mediapipe_detector,
    media_dir: Path,
    tmp_path: Path,
) -> None:
    video = face_clip(media_dir, tmp_path / "v6.mp4", frames=6)
    audio = speech(media_dir, tmp_path / "a.wav", 0.3)
    outputs = []
    with torch_threads(1):
        for pipeline in ("sequential", "staged"):
            ls = LipSync(version="1.5", models=tiny_models, detector=mediapipe_detector, pipeline=pipeline)  # type: ignore[arg-type]
            out = tmp_path / f"{pipeline}.mp4"
            result = ls.run(video, audio, out, loop_mode="cut_off", **FAST)
            assert result.frames == 6
            outputs.append(inspect_output(out))
    (info_a, frames_a), (info_b, frames_b) = outputs
    assert info_a == info_b
    # The frames handed to the encoder are identical (the test above); the two H.264 encodes of them are
    # not always byte-identical (observed within one process), so compare the pictures, not the bytes.
    assert min(psnr(a, b) for a, b in zip(frames_a, frames_b, strict=True)) >= 35
    assert LipSync(version="1.5").tuning.options.pipeline == "staged"  # the default


def test_no_face_in_a_later_chunk_fails_the_job_and_joins_every_worker(
    lipsync: LipSync, media_dir: Path, tmp_path: Path
) -> None:
    # Frame 35 (chunk 2) has no face; chunks 0 and 1 are in the model stages when the align stage fails.
    video = face_clip(media_dir, tmp_path / "v40.mp4", frames=40, no_face=[35])
    audio = speech(media_dir, tmp_path / "a.wav", 1.7)
    events: list[ProgressEvent] = []
    job = lipsync.prepare(
        video, audio, on_no_face="fail", loop_mode="cut_off", progress=events.append, **FAST
    )
    run = job.drive()
    got = []
    with pytest.raises(NoFaceDetected) as err:
        for frame in run.frames():
            got.append(frame)
    assert err.value.frame_index == 35 and "frame 35 (1.40 s)" in str(err.value)
    assert run.runner is not None and run.runner.failed_stage == "align"
    assert_all_ended(run.runner)
    assert len(got) <= 32  # nothing of chunk 2 or later came out
    fractions = [e.fraction for e in events]
    assert fractions == sorted(fractions)


def test_inline_mode_fails_with_the_stage_error_and_closes_the_decoder(
    lipsync: LipSync, replay_clip: tuple[Path, Path]
) -> None:
    video, audio = replay_clip  # no face in frames 4-13: the first chunk fails at frame 4
    run = lipsync.prepare(video, audio, on_no_face="fail", **FAST).drive(DriverConfig(mode="inline"))
    with pytest.raises(NoFaceDetected) as err:
        list(run.frames())
    assert err.value.frame_index == 4
    assert run.runner is None
    # The decode stage's cleanup ran (it records what it decoded when it closes): the first chunk's frames.
    assert run.counters.decoded_frames == 16
    assert run.counters.frames_done == 0


def test_cancelling_during_diffusion_stops_every_worker(
    lipsync: LipSync, replay_clip: tuple[Path, Path], tmp_path: Path
) -> None:
    video, audio = replay_clip

    def cancel_on_diffusion(event: ProgressEvent) -> None:
        if event.stage == "diffuse":
            raise JobCancelled("cancelled by the test")

    job = lipsync.prepare(video, audio, progress=cancel_on_diffusion, **FAST)
    run = job.drive()
    with pytest.raises(JobCancelled):
        list(run.frames())
    assert (
        run.runner is not None and run.runner.failed_stage == "model"
    )  # VAE encode, U-Net, VAE decode share a worker on the CPU
    assert_all_ended(run.runner)
    with pytest.raises(JobCancelled):  # through LipSync.run: no output, no partial file
        lipsync.run(video, audio, tmp_path / "o.mp4", progress=cancel_on_diffusion, **FAST)
    assert list(tmp_path.glob("*.mp4")) == []


def test_a_slow_encoder_stalls_decoding_with_bounded_frames_in_flight(
    lipsync: LipSync, media_dir: Path, tmp_path: Path
) -> None:
    # 20 frames with a face in the first one only (the model runs on 1-2 frames a chunk), ping-ponged to
    # ~9.5 s of speech: 15 chunks, more than the pipeline can hold.
    video = face_clip(media_dir, tmp_path / "v20.mp4", frames=20, no_face=range(1, 20))
    audio = speech(media_dir, tmp_path / "a.wav", 9.5, speaker="demo2")
    job = lipsync.prepare(video, audio, **FAST)
    run = job.drive(DriverConfig(chunk_batch=1, queue_chunks=1))
    runner = run.runner
    assert job.plan.chunks_total == 15 > run.in_flight_bound
    frames = run.frames()
    first = next(frames)  # the encoder takes one frame, then stalls
    wait_until_stalled(runner)
    # Every queue full, every stage holding one chunk, the encoder one: decoding stopped there.
    assert runner.in_flight == run.in_flight_bound
    assert run.counters.frames_done == 0
    rest = list(frames)
    assert len(rest) + 1 == job.timeline.num_frames
    assert first.shape == (640, 480, 3)
    assert run.stats.max_in_flight <= run.in_flight_bound
    assert run.stats.blocked_puts["decode"] >= 1
    assert_all_ended(runner)


def test_throughput_options_are_checked_up_front() -> None:
    for kwargs in (
        {"pipeline": "parallel"},
        {"chunk_batch": 0},
        {"chunk_batch": "max"},
        {"preset": "lightning"},
        {"compile": "yes"},
    ):
        with pytest.raises(InputError) as err:
            LipSync(version="1.5", **kwargs)  # type: ignore[arg-type]
        assert err.value.field == next(iter(kwargs))


def test_progress_events_are_serialised_and_monotonic(
    lipsync: LipSync, replay_clip: tuple[Path, Path], tmp_path: Path
) -> None:
    video, audio = replay_clip
    events: list[ProgressEvent] = []
    lock = threading.Lock()
    concurrent = []

    def record(event: ProgressEvent) -> None:
        if not lock.acquire(blocking=False):
            concurrent.append(event)
            return
        try:
            events.append(event)
        finally:
            lock.release()

    lipsync.run(video, audio, tmp_path / "o.mp4", progress=record, inference_steps=2, guidance_scale=1.0)
    assert not concurrent
    fractions = [e.fraction for e in events]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    diffuse = [(e.chunk, e.step) for e in events if e.stage == "diffuse"]
    assert diffuse == [(0, 1), (0, 2), (1, 1), (1, 2), (2, 1), (2, 2)]
    assert {"audio", "decode", "detect", "vae_encode", "diffuse", "done"} <= {e.stage for e in events}

"""Length handling: the output frame plan for every loop_mode."""

from __future__ import annotations

import pytest

from lipsync.pipeline.timeline import AUDIO_SAMPLES_PER_FRAME, plan_timeline


def reference_pingpong(n_video: int, n_audio: int) -> list[int]:
    """The reference's ``loop_video`` rebuilt literally: concatenate forward / reversed copies, truncate."""
    frames = list(range(n_video))
    if n_audio <= n_video:
        return frames[:n_audio]
    out: list[int] = []
    for lap in range(-(-n_audio // n_video)):
        out += frames if lap % 2 == 0 else frames[::-1]
    return out[:n_audio]


def samples_for(n_frames: int) -> int:
    # The audio length the reference turns into n_frames output frames is (n_frames - 2) * 640 samples.
    return (n_frames - 2) * AUDIO_SAMPLES_PER_FRAME


@pytest.mark.parametrize(("n_video", "n_audio"), [(5, 23), (7, 7), (1, 4), (16, 50), (250, 252), (40, 12)])
def test_pingpong_matches_reference_index_sequence(n_video: int, n_audio: int) -> None:
    t = plan_timeline(n_video, n_audio, samples_for(n_audio), "pingpong")
    assert t.num_frames == n_audio
    assert t.source_indices(0, t.num_frames) == reference_pingpong(n_video, n_audio)


def test_pingpong_turnaround_frame_appears_twice() -> None:
    t = plan_timeline(3, 8, samples_for(8), "pingpong")
    seq = t.source_indices(0, 8)
    assert seq[2] == seq[3] == 2 and seq[5] == seq[6] == 0


@pytest.mark.parametrize(("n_video", "n_audio"), [(5, 23), (4, 4), (9, 3)])
def test_loop_restarts_the_video(n_video: int, n_audio: int) -> None:
    t = plan_timeline(n_video, n_audio, samples_for(n_audio), "loop")
    expected = (list(range(n_video)) * (n_audio // n_video + 1))[:n_audio]
    assert t.num_frames == n_audio
    assert t.source_indices(0, t.num_frames) == expected


@pytest.mark.parametrize(("n_video", "n_audio"), [(5, 23), (30, 12)])
def test_cut_off_cuts_both_to_the_shorter(n_video: int, n_audio: int) -> None:
    samples = samples_for(n_audio)
    t = plan_timeline(n_video, n_audio, samples, "cut_off")
    assert t.num_frames == min(n_video, n_audio)
    assert t.source_indices(0, t.num_frames) == list(range(t.num_frames))
    assert not t.repeats_video and t.pad_audio_to == 0
    assert t.audio_samples == min(samples, t.num_frames * AUDIO_SAMPLES_PER_FRAME)


def test_silence_keeps_the_whole_longer_video_and_pads_audio() -> None:
    t = plan_timeline(100, 40, samples_for(40), "silence")
    assert t.num_frames == 100
    assert t.pad_audio_to == 100 * AUDIO_SAMPLES_PER_FRAME
    assert t.audio_samples == 100 * AUDIO_SAMPLES_PER_FRAME
    assert t.source_indices(0, 100) == list(range(100))


def test_silence_with_longer_audio_pingpongs_like_the_reference() -> None:
    t = plan_timeline(6, 20, samples_for(20), "silence")
    assert t.pad_audio_to == 0
    assert t.source_indices(0, 20) == reference_pingpong(6, 20)


def test_audio_track_is_the_whole_audio_when_the_audio_drives_the_length() -> None:
    samples = 9 * 16000 + 123  # not a whole number of frames
    from lipsync.engine.audio import duration_frames

    t = plan_timeline(1000, duration_frames(samples), samples, "pingpong")
    assert t.audio_samples == samples  # reference: audio[: int(n_out / 25 * 16000)] keeps it whole
    assert t.num_frames * AUDIO_SAMPLES_PER_FRAME >= samples


@pytest.mark.parametrize("bad", [(0, 5, 640, "pingpong"), (5, 0, 0, "pingpong"), (5, 5, 640, "bounce")])
def test_rejects_empty_inputs_and_unknown_modes(bad: tuple[int, int, int, str]) -> None:
    with pytest.raises(ValueError):
        plan_timeline(*bad)  # type: ignore[arg-type]


def test_source_index_bounds() -> None:
    t = plan_timeline(5, 10, samples_for(10), "pingpong")
    with pytest.raises(IndexError):
        t.source_index(10)

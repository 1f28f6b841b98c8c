"""`lipsync faces VIDEO --time T -o faces.png`: the faces at a moment of a video, numbered, with the
``face`` option that selects each (``{"point": [x, y], "time": T}``), so a user can pick the speaker."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    """Attach the `faces` command to *app*."""
    app.command("faces", no_args_is_help=True)(faces)


def faces(
    video: Annotated[Path, typer.Argument(help="Input video.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Picture to write (PNG or JPEG).")],
    time: Annotated[float, typer.Option("--time", help="Seconds into the video.")] = 0.0,
    face_detector: Annotated[
        str, typer.Option("--face-detector", help="insightface (reference) | mediapipe (bundled, offline).")
    ] = "insightface",
    weights_dir: Annotated[
        Path | None, typer.Option("--weights-dir", help="Weights root (for the InsightFace models).")
    ] = None,
) -> None:
    """Draw every face found at TIME and print the ``face`` option that picks each one."""
    import cv2

    from lipsync.errors import LipsyncError
    from lipsync.media.faces import create_detector
    from lipsync.media.io import iter_frames_25fps

    frame_index = round(time * 25)
    frame = next(iter(iter_frames_25fps(video, start_frame=frame_index, max_frames=1)), None)
    if frame is None:
        typer.echo(f"error: the video has no frame at {time:g} s", err=True)
        raise typer.Exit(2)
    models_dir = None
    if weights_dir is not None:
        from lipsync.engine.weights import WeightsLayout

        models_dir = WeightsLayout(weights_dir).face_models_dir
    try:
        with create_detector(face_detector, models_dir=models_dir) as detector:
            found = detector.detect_all(frame)
    except LipsyncError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    height, width = frame.shape[:2]
    picture = cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)
    thick = max(2, width // 400)
    for number, face in enumerate(found, start=1):
        x1, y1, x2, y2 = (int(v) for v in face.bbox)
        point = [round((x1 + x2) / 2 / width, 3), round((y1 + y2) / 2 / height, 3)]
        cv2.rectangle(picture, (x1, y1), (x2, y2), (0, 220, 255), thick)
        cv2.putText(
            picture,
            str(number),
            (x1, max(y1 - 8, 20)),
            cv2.FONT_HERSHEY_SIMPLEX,
            thick / 2,
            (0, 220, 255),
            thick,
        )
        typer.echo(f"face {number}: " + json.dumps({"face": {"point": point, "time": round(time, 2)}}))
    if not found:
        typer.echo(f"no face found at {time:g} s (frame {frame_index})")
    if not cv2.imwrite(str(output), picture):
        typer.echo(f"error: could not write {output}", err=True)
        raise typer.Exit(2)
    typer.echo(f"wrote {output}")

"""Which face to lip-sync when the video shows more than one person (the ``face`` run option)."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from annotated_types import Ge, Le
from pydantic import BaseModel, BeforeValidator, ConfigDict, Discriminator, Field, Tag, model_validator

from contracts._omit import OmitNone
from contracts._scalars import JsonFloat, json_number

__all__ = ["FaceAuto", "FaceBoxes", "FaceChoice", "FacePoint", "FaceReport", "NormalisedBox"]

#: A fraction of the picture's width or height. The bounds go on ``float`` itself, before JsonFloat's check,
#: so the JSON schema shows them as minimum/maximum.
_Unit = Annotated[float, Ge(0.0), Le(1.0), BeforeValidator(json_number)]
#: A count or an index (the same placement of the bound, for the schema's minimum).
_Count = Annotated[int, Ge(0), BeforeValidator(json_number)]


class FacePoint(BaseModel):
    """The face under a point of the picture at a moment, then that person through the shot."""

    model_config = ConfigDict(extra="forbid")

    point: tuple[_Unit, _Unit] = Field(
        description="(x, y) in [0, 1], from the picture's top-left corner (0.5, 0.5 is the centre)"
    )
    time: JsonFloat = Field(
        default=0.0, ge=0.0, description="Seconds into the video where the point is taken"
    )


class NormalisedBox(BaseModel):
    """A face box as fractions of the picture's width and height. Two opposite corners in either order (they are
    put in order); a box with no area overlaps no face."""

    model_config = ConfigDict(extra="forbid")

    x1: _Unit
    y1: _Unit
    x2: _Unit
    y2: _Unit

    @model_validator(mode="after")
    def _ordered(self) -> NormalisedBox:
        # Ordering is not a JSON Schema rule, so it is done here rather than refused (the schema tells the truth).
        x1, x2 = sorted((self.x1, self.x2))
        y1, y2 = sorted((self.y1, self.y2))
        object.__setattr__(self, "x1", x1)
        object.__setattr__(self, "x2", x2)
        object.__setattr__(self, "y1", y1)
        object.__setattr__(self, "y2", y2)
        return self


class FaceBoxes(BaseModel):
    """Caller-made boxes, one per 25-fps video frame (``null``: no face to sync in that frame)."""

    model_config = ConfigDict(extra="forbid")

    boxes: list[NormalisedBox | None] = Field(
        min_length=1,
        max_length=25 * 60 * 60,
        description=(
            "One entry per frame of the video at 25 fps: the face to sync in that frame (the detected face "
            "overlapping it most), or null for none. The count must equal the video's frame count."
        ),
    )


class FaceAuto(BaseModel):
    """Active speaker detection from the input video's own sound track."""

    model_config = ConfigDict(extra="forbid")

    auto: Literal[True] = Field(description="Pick the face whose mouth moves with the video's own speech")


def _kind(value: Any) -> str | None:
    """Which form a ``face`` value has, so a bad value is reported against that form only."""
    if isinstance(value, str):
        return "largest"
    keys = (
        set(value)
        if isinstance(value, dict)
        else {k for k in ("point", "boxes", "auto") if hasattr(value, k)}
    )
    for kind in ("point", "boxes", "auto"):
        if kind in keys:
            return kind
    return None


#: ``"largest"`` (the reference: the largest face, frame by frame), a point, per-frame boxes, or auto.
FaceChoice = Annotated[
    Annotated[Literal["largest"], Tag("largest")]
    | Annotated[FacePoint, Tag("point")]
    | Annotated[FaceBoxes, Tag("boxes")]
    | Annotated[FaceAuto, Tag("auto")],
    Discriminator(
        _kind,
        custom_error_type="face_choice",
        custom_error_message='expected "largest", {"point": [x, y], "time": t}, {"boxes": [...]} or {"auto": true}',
    ),
]


class FaceReport(OmitNone):
    """What the ``face`` option chose in a run, and how: the pipeline's ``RunResult.face`` (this model's
    ``model_dump(mode="json")``) and, as an extension, ``face`` of a completed prediction. Fields that do not
    apply to the mode are left out.

    - ``{"mode": "point", "track": 0, "frame": 25, "frames_with_face": 60}``
    - ``{"mode": "auto", "track": 1, "score": 0.62, "runner_up": -0.05, "frames_with_face": 60}``
    - ``{"mode": "auto", "fallback": "largest", "reason": "the video has no sound track: ..."}``
    - ``{"mode": "boxes"}``, ``{"mode": "largest"}``
    """

    # Unknown keys are kept: a newer server may report more than this version knows.
    model_config = ConfigDict(extra="allow")
    _omit_if_none: ClassVar[frozenset[str]] = frozenset(
        {"track", "score", "runner_up", "frame", "frames_with_face", "fallback", "reason"}
    )

    mode: Literal["largest", "point", "boxes", "auto"] = Field(
        description="The face option that ran (auto also when it fell back to the largest face)"
    )
    track: _Count | None = Field(
        default=None,
        description="point/auto: the chosen face track (tracks are numbered from 0 as faces first appear)",
    )
    score: JsonFloat | None = Field(
        default=None,
        description="auto: the chosen track's active-speaker score (above 0: its mouth moves with the speech)",
    )
    runner_up: JsonFloat | None = Field(
        default=None, description="auto: the next best track's score (absent with one face)"
    )
    frame: _Count | None = Field(
        default=None, description="point: the 25-fps frame the point was taken in (time × 25)"
    )
    frames_with_face: _Count | None = Field(
        default=None, description="point/auto: frames in which the chosen person was detected"
    )
    fallback: Literal["largest"] | None = Field(
        default=None,
        description="auto: set when no face clearly spoke; the largest face was synced instead",
    )
    reason: str | None = Field(default=None, description="auto: why it fell back")

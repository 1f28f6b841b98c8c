"""The engine's run options: the one definition of their names, types, ranges, defaults and descriptions.

``LipsyncRequest`` (the HTTP body), the client's ``SubmitOptions``, both CLIs, the server's job records and
``lipsync.LipSync.run`` all take these fields from :class:`RunOptions`, so adding an option means editing
this class and the engine code that uses it, nothing else.

Two ranges, one declaration: a numeric field carries a :class:`Bounds` with the API range (what HTTP
enforces and the schema shows) and the wider local range that local runs (the Python API, ``lipsync run``,
tests) may use, e.g. 1 denoising step for a smoke test. Plain validation is the API's; local callers
validate with :meth:`RunOptions.local` (the ``LOCAL`` validation context).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Final, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import PydanticCustomError, core_schema

from contracts._faces import FaceChoice
from contracts._scalars import JsonBool, JsonFloat, JsonInt

__all__ = ["LOCAL", "Bounds", "LoopMode", "ModelVersion", "OnNoFace", "RunOptions"]

LoopMode = Literal["pingpong", "loop", "cut_off", "silence"]
ModelVersion = Literal["1.5", "1.6"]
OnNoFace = Literal["fail", "passthrough"]

#: Validation context of local runs: numeric fields accept their :attr:`Bounds.local` range.
LOCAL: Final[Mapping[str, str]] = {"run_options_scope": "local"}


def _number(value: float) -> int | float:
    """3.0 -> 3, as pydantic's own range messages print it."""
    return int(value) if float(value).is_integer() else value


@dataclass(frozen=True, slots=True)
class Bounds:
    """Inclusive ``api`` and ``local`` ranges of a numeric field (``Annotated[int, Bounds(...)]``).

    Errors read like pydantic's own (``greater_than_equal`` / ``less_than_equal``), so HTTP 400 messages
    are the same as with ``Field(ge=, le=)``; the JSON schema shows the API range.
    """

    api: tuple[float, float]
    local: tuple[float, float]

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.with_info_after_validator_function(self._check, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        json_schema = handler(schema)
        json_schema["minimum"], json_schema["maximum"] = self.api
        return json_schema

    def _check(self, value: float, info: core_schema.ValidationInfo) -> float:
        local = isinstance(info.context, Mapping) and info.context.get("run_options_scope") == "local"
        low, high = self.local if local else self.api
        if value < low:
            raise PydanticCustomError(
                "greater_than_equal", "Input should be greater than or equal to {ge}", {"ge": _number(low)}
            )
        if value > high:
            raise PydanticCustomError(
                "less_than_equal", "Input should be less than or equal to {le}", {"le": _number(high)}
            )
        return value


class RunOptions(BaseModel):
    """How one lip-sync runs. Defaults are the reference's ``inference.sh`` values, except ``on_no_face``
    (passthrough, see docs/pipeline.md) and ``deep_cache`` (off: the exact, uncached schedule).

    Unknown names are rejected (naming the field), so a typo never silently does nothing.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    seed: JsonInt = Field(
        default=1247, ge=0, le=2**32 - 1, description="Random seed (reference default 1247)"
    )
    guidance_scale: Annotated[JsonFloat, Bounds(api=(1.0, 3.0), local=(1.0, 20.0))] = Field(
        default=1.5, description="Classifier-free guidance scale"
    )
    inference_steps: Annotated[JsonInt, Bounds(api=(10, 50), local=(1, 1000))] = Field(
        default=20, description="DDIM steps"
    )
    loop_mode: LoopMode = Field(
        default="pingpong",
        description=(
            "Length mismatch handling. pingpong (reference): output follows the audio; a shorter video plays "
            "forward then backward, a longer one is cut. loop: like pingpong but the video restarts. "
            "cut_off: both are cut to the shorter. silence: the whole video is kept and the audio padded "
            "with silence; a longer audio ping-pongs the video."
        ),
    )
    model_version: ModelVersion = Field(
        default="1.6", description="LatentSync checkpoint: 1.6 (512 px) or 1.5"
    )
    on_no_face: OnNoFace = Field(
        default="passthrough",
        description=(
            "Frames without a detectable face: passthrough copies them unchanged and resumes syncing when the "
            "face returns; fail ends the job (reference behaviour). A video with no face at all always fails."
        ),
    )
    deep_cache: JsonBool = Field(
        default=False,
        description="Reference DeepCache schedule: faster, approximate (off: the exact schedule)",
    )
    face: FaceChoice = Field(
        default="largest",
        description=(
            "Which face to sync when several people are in the picture (docs/faces.md). largest (reference): "
            'the largest face in each frame. {"point": [x, y], "time": t}: the person under that point '
            "(fractions of width and height) at t seconds, tracked through the shot. "
            '{"boxes": [{"x1", "y1", "x2", "y2"} | null, ...]}: one box per 25-fps frame, as fractions. '
            '{"auto": true}: the active speaker, from the video\'s own sound track (falls back to largest '
            "when it has no usable speech)."
        ),
        examples=[{"auto": True}, {"point": [0.25, 0.5], "time": 1.0}],
    )

    @classmethod
    def local(cls, data: Mapping[str, Any] | None = None, /, **values: Any) -> Self:
        """Validate *data* and *values* with the local ranges (pydantic ``ValidationError`` when invalid)."""
        return cls.model_validate({**(data or {}), **values}, context=LOCAL)

    @classmethod
    def from_stored(cls, data: Mapping[str, Any]) -> Self:
        """Read back a stored ``model_dump(mode="json")``, tolerating records written by older versions
        (missing fields take their defaults; names no longer known are dropped)."""
        return cls.local({name: value for name, value in data.items() if name in cls.model_fields})

    def run_options(self, *, default_version: ModelVersion | None = None) -> RunOptions:
        """These options alone, as a :class:`RunOptions` (a ``LipsyncRequest`` also carries media and
        delivery fields). Fields the caller set stay set, so ``model_fields_set`` still tells defaults apart.

        *default_version*, when given, is the ``model_version`` if the caller did not choose one (a server's
        configured checkpoint, rather than the contract's default)."""
        names = RunOptions.model_fields.keys()
        values = {name: getattr(self, name) for name in names}
        fields_set = self.model_fields_set & names
        if default_version is not None and "model_version" not in fields_set:
            values["model_version"] = default_version
            fields_set |= {"model_version"}
        return RunOptions.model_construct(fields_set, **values)

    @property
    def do_classifier_free_guidance(self) -> bool:
        """The reference runs CFG iff ``guidance_scale > 1``."""
        return float(self.guidance_scale) > 1.0

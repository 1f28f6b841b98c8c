"""Model weights: where they live, downloading them (pinned + checksummed), tiny dev weights, and loading.

Directory layout under one root (``LIPSYNC_WEIGHTS_DIR``, default ``~/.cache/lipsync/weights``)::

    <root>/
      latentsync-1.6/                    one folder per release (lipsync.engine.releases.RELEASES)
        latentsync_unet.pt               ByteDance/LatentSync-1.6 : latentsync_unet.pt
        whisper/tiny.pt                  ByteDance/LatentSync-1.6 : whisper/tiny.pt  (= OpenAI whisper tiny)
        lipsync-weights.json             what was written here: kind (official|tiny), files + sha256
      sd-vae-ft-mse/                     stabilityai/sd-vae-ft-mse (shared by all releases)
        config.json
        diffusion_pytorch_model.safetensors
      insightface/                       InsightFace root: FaceAnalysis(name="buffalo_l", root=<this>)
        models/buffalo_l/det_10g.onnx
        models/buffalo_l/2d106det.onnx

What is pinned (repos, revisions, sha256) is in :mod:`lipsync.engine.releases`. The concerns live in one module
each: :mod:`.layout` (paths, manifest, completeness check), :mod:`.hub` (download + verify; the only code that
talks to the Hugging Face hub), :mod:`.tiny` (random development weights), :mod:`.loading` (files → models).
Official and tiny weights go through the same :func:`load_engine_models`; the only difference is that a tiny
folder's ``lipsync-weights.json`` carries the (tiny) U-Net config, where official weights use the release's.
"""

from lipsync.engine.releases import DEFAULT_VERSION, VERSIONS
from lipsync.engine.weights.hub import HubDownload, HubFile, download_weights, hub_files, verify_weights
from lipsync.engine.weights.layout import (
    MANIFEST_FORMAT,
    MANIFEST_NAME,
    WEIGHTS_DIR_ENV,
    WeightsLayout,
    default_weights_dir,
    sha256_file,
)
from lipsync.engine.weights.loading import EngineModels, load_engine_models
from lipsync.engine.weights.tiny import write_tiny_weights

__all__ = [
    "DEFAULT_VERSION",
    "MANIFEST_FORMAT",
    "MANIFEST_NAME",
    "VERSIONS",
    "WEIGHTS_DIR_ENV",
    "EngineModels",
    "HubDownload",
    "HubFile",
    "WeightsLayout",
    "default_weights_dir",
    "download_weights",
    "hub_files",
    "load_engine_models",
    "sha256_file",
    "verify_weights",
    "write_tiny_weights",
]

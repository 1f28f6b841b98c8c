// The playground page: inputs (upload or URL), options rendered from the OpenAPI schema, a run with
// progress and cancel, the result side by side, the history, and the same request as code.

import { Api, ApiError, MODEL_ID, baseUrlOf } from "./api.js";
import { snippets } from "./code.js";
import { describeFace, duration, el, seconds } from "./format.js";
import { History } from "./history.js";
import { Lockstep } from "./lockstep.js";
import { optionFields, renderOptions, requestSchema } from "./schema_form.js";

const KEY_STORAGE = "lipsync.playground.apiKey";
const POLL_MS = 500;
const CANCELLED_CODE = 1405;
const UNAVAILABLE_CODE = 5003;

const $ = (id) => document.getElementById(id);

const baseUrl = baseUrlOf(window.location);
const api = new Api(baseUrl, () => localStorage.getItem(KEY_STORAGE) || "");

// ---- API key ---------------------------------------------------------------------------------------------

function showKeyState() {
  const key = localStorage.getItem(KEY_STORAGE);
  $("key-status").textContent = key ? "saved in this browser" : "not set";
  $("key-panel").classList.toggle("missing", !key);
}

$("key-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const key = $("api-key").value.trim();
  if (key) localStorage.setItem(KEY_STORAGE, key);
  else localStorage.removeItem(KEY_STORAGE);
  $("api-key").value = "";
  showKeyState();
  history.refresh();
});

// ---- tabs ------------------------------------------------------------------------------------------------

for (const tab of document.querySelectorAll("[data-tab]")) {
  tab.addEventListener("click", () => selectTab(tab.dataset.tab));
}

function selectTab(name) {
  for (const tab of document.querySelectorAll("[data-tab]")) tab.setAttribute("aria-selected", String(tab.dataset.tab === name));
  for (const panel of document.querySelectorAll(".tab-panel")) panel.hidden = panel.id !== `tab-${name}`;
  if (name === "history") history.refresh();
  if (name === "code") renderCode();
}

// ---- banner (server state) -------------------------------------------------------------------------------

function banner(text) {
  $("banner").textContent = text;
  $("banner").hidden = !text;
}

const HEALTH_EVERY_MS = 5000;

// A worker process that keeps dying is restarted ever more slowly: between restarts none is alive.
// Checked until seen (a crash loop shows within a few checks), then the banner stays.
async function checkServer() {
  const runner = (await api.health())?.runner;
  if (runner && runner.restarts_total > 0 && runner.alive === 0) {
    banner(
      `The server's workers keep stopping (restarted ${runner.restarts_total} times): jobs wait in the queue ` +
        "until one runs. The server's log says why.",
    );
    return;
  }
  if (runner) setTimeout(checkServer, HEALTH_EVERY_MS); // the mock has no /healthz: nothing to watch
}

// ---- inputs ----------------------------------------------------------------------------------------------

const inputs = {};

function setupInput(kind) {
  const state = { url: "", preview: "", uploading: null };
  inputs[kind] = state;
  const drop = $(`${kind}-drop`);
  const file = $(`${kind}-file`);
  const url = $(`${kind}-url`);
  const bar = $(`${kind}-upload`);
  const preview = $(`${kind}-preview`);
  const note = $(`${kind}-note`);

  function show(src) {
    state.preview = src;
    preview.src = src;
    preview.hidden = !src;
  }

  async function take(chosen) {
    if (!chosen) return;
    if (state.preview.startsWith("blob:")) URL.revokeObjectURL(state.preview);
    show(URL.createObjectURL(chosen));
    state.url = "";
    url.value = "";
    bar.hidden = false;
    bar.value = 0;
    note.textContent = `Uploading ${chosen.name}…`;
    state.uploading = api.upload(chosen, (fraction) => {
      bar.value = fraction;
    });
    try {
      state.url = await state.uploading;
      url.value = state.url;
      note.textContent = `Uploaded ${chosen.name} (${(chosen.size / 1e6).toFixed(2)} MB)`;
      drop.dataset.uploaded = "true";
    } catch (err) {
      note.textContent = `Upload failed: ${err.message}`;
      drop.dataset.uploaded = "false";
    } finally {
      state.uploading = null;
      renderCode();
    }
  }

  file.addEventListener("change", () => take(file.files[0]));
  url.addEventListener("change", () => {
    state.url = url.value.trim();
    show(state.url);
    note.textContent = "";
    renderCode();
  });
  drop.addEventListener("dragover", (event) => {
    event.preventDefault();
    drop.classList.add("over");
  });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    take(event.dataTransfer.files[0]);
  });
}

setupInput("video");
setupInput("audio");

// ---- options (from the OpenAPI schema) -------------------------------------------------------------------

let readOptions = () => ({});

async function loadOptions() {
  try {
    const doc = await api.openapi();
    readOptions = renderOptions($("advanced-fields"), optionFields(requestSchema(doc, MODEL_ID), doc));
    $("advanced-fields").addEventListener("input", renderCode);
    $("advanced-fields").addEventListener("change", renderCode);
  } catch (err) {
    $("advanced-fields").textContent = `Options unavailable: ${err.message}`;
  }
  renderCode();
}

// ---- code tab --------------------------------------------------------------------------------------------

function renderCode() {
  const code = snippets(baseUrl, { video: inputs.video.url, audio: inputs.audio.url }, readOptions());
  for (const [name, text] of Object.entries(code)) $(`code-${name}`).textContent = text;
}

for (const button of document.querySelectorAll("[data-copy]")) {
  button.addEventListener("click", async () => {
    await navigator.clipboard?.writeText($(button.dataset.copy).textContent);
    button.textContent = "Copied";
    setTimeout(() => (button.textContent = "Copy"), 1500);
  });
}

// ---- running ---------------------------------------------------------------------------------------------

let current = null; // {id, started, firstProgressAt, timer, seed}

function showError(code, message) {
  $("error-code").textContent = code ? String(code) : "";
  let text = message;
  if (code === UNAVAILABLE_CODE) {
    text += " — the server has no usable model weights. On the server run `lipsync weights download` (or " +
      "`make serve`, which falls back to tiny development weights), then restart it.";
  }
  $("error-message").textContent = text;
  $("error").hidden = false;
}

function clearError() {
  $("error").hidden = true;
}

function runUi(running) {
  $("submit").disabled = running;
  $("cancel").hidden = !running;
  $("run").hidden = false;
}

$("run-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  clearError();
  for (const kind of ["video", "audio"]) if (inputs[kind].uploading) await inputs[kind].uploading;
  if (!localStorage.getItem(KEY_STORAGE)) return showError(401, "Enter your API key first (above).");
  const missing = ["video", "audio"].filter((kind) => !inputs[kind].url);
  if (missing.length) return showError(400, `Choose a ${missing.join(" and an ")} first.`);
  const options = readOptions();
  const body = { video: inputs.video.url, audio: inputs.audio.url, ...options };
  $("result").hidden = true;
  runUi(true);
  setProgress(0, "submitting");
  let prediction;
  try {
    prediction = await api.submit(body);
  } catch (err) {
    runUi(false);
    return showError(err.code, err.message);
  }
  current = {
    id: prediction.id,
    started: performance.now(),
    firstProgress: null,
    seed: options.seed,
    original: inputs.video.preview || inputs.video.url,
  };
  $("run").dataset.id = prediction.id;
  current.timer = setInterval(tick, 200);
  poll(current);
});

$("cancel").addEventListener("click", async () => {
  if (!current) return;
  $("cancel").disabled = true;
  try {
    await api.cancel(current.id);
  } catch (err) {
    showError(err.code, err.message);
  } finally {
    $("cancel").disabled = false;
  }
});

function tick() {
  if (current) $("elapsed").textContent = `elapsed ${duration((performance.now() - current.started) / 1000)}`;
}

function setProgress(fraction, stage, eta) {
  $("progress").value = fraction;
  $("progress").dataset.value = String(fraction);
  $("percent").textContent = `${Math.round(fraction * 100)}%`;
  $("stage").textContent = stage;
  $("eta").textContent = eta ? `about ${duration(eta)} left` : "";
}

function estimateEta(run, data) {
  if (typeof data.eta_s === "number") return data.eta_s;
  const p = data.progress;
  if (typeof p !== "number" || p <= 0) return null;
  const now = performance.now();
  if (!run.firstProgress) run.firstProgress = { at: now, p };
  const dp = p - run.firstProgress.p;
  if (dp < 0.05) return null;
  return ((now - run.firstProgress.at) / 1000 / dp) * (1 - p);
}

function stageOf(data) {
  if (data.stage) return data.stage;
  if (data.status === "created") return "queued";
  return typeof data.progress === "number" ? "generating" : "preparing";
}

async function poll(run) {
  while (current === run) {
    let data;
    try {
      data = await api.result(run.id);
    } catch (err) {
      if (err instanceof ApiError && err.code !== 0 && err.code !== 429 && err.code < 500) {
        finish(run);
        return showError(err.code, err.message);
      }
      await sleep(POLL_MS * 2);
      continue;
    }
    $("status").textContent = data.status;
    $("run").dataset.status = data.status;
    if (data.status === "completed") {
      finish(run);
      setProgress(1, "done");
      return showResult(data, run.original, run.seed);
    }
    if (data.status === "failed") {
      finish(run);
      const cancelled = data.code === CANCELLED_CODE;
      $("status").textContent = cancelled ? "cancelled" : "failed";
      $("run").dataset.status = cancelled ? "cancelled" : "failed";
      setProgress($("progress").value, "");
      return showError(data.code, data.error || "the prediction failed");
    }
    setProgress(data.progress ?? 0, stageOf(data), estimateEta(run, data));
    await sleep(POLL_MS);
  }
}

function finish(run) {
  clearInterval(run.timer);
  tick();
  if (current === run) current = null;
  runUi(false);
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// ---- result ----------------------------------------------------------------------------------------------

const lockstep = new Lockstep($("result-output"), $("result-original"), {
  playButton: $("play"),
  seek: $("seek"),
  clock: $("clock"),
});

function showResult(data, original, seed) {
  const output = data.outputs[0];
  $("result-output").src = output;
  $("result-original").src = original || "";
  $("original-figure").hidden = !original;
  $("download").href = output;
  $("download").download = `${data.id}.mp4`;
  const timings = Object.entries(data.timings || {}).map(([name, ms]) => [name, seconds(ms)]);
  // null: not known (a prediction opened from the history; the API does not echo its options).
  if (seed !== null) timings.push(["seed", seed === undefined ? `${seedDefault()} (default)` : String(seed)]);
  $("timings").replaceChildren(...timings.flatMap(([name, value]) => [el("dt", { textContent: name }), el("dd", { textContent: value })]));
  $("face").textContent = describeFace(data.face);
  $("face").hidden = !data.face;
  $("result").dataset.id = data.id;
  $("result").hidden = false;
  lockstep.seekTo(0);
}

function seedDefault() {
  const input = document.getElementById("opt-seed");
  return input ? input.placeholder.replace(/^default /, "") : "server default";
}

// ---- history ---------------------------------------------------------------------------------------------

const history = new History(api, {
  table: $("history"),
  status: $("history-status"),
  onOpen: (item) => {
    selectTab("playground");
    clearError();
    $("run").hidden = false;
    $("status").textContent = item.status;
    $("run").dataset.id = item.id;
    if (item.status === "completed") {
      $("run").hidden = true;
      showResult(item, "", null);
    } else {
      $("result").hidden = true;
      showError(item.code, item.error);
    }
  },
  onError: (err) => showError(err.code, err.message),
});
$("history-refresh").addEventListener("click", () => history.refresh());

// ---- start -----------------------------------------------------------------------------------------------

$("base-url").textContent = baseUrl;
showKeyState();
checkServer();
loadOptions();
document.body.dataset.ready = "true";

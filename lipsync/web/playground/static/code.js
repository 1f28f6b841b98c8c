// The code tab: the same request as curl, the official `wavespeed` SDK and `lipsync.client`, for exactly
// the inputs and options on screen and this server's base URL. The key is read from an environment
// variable in every snippet: the page never prints it.

import { MODEL_ID } from "./api.js";

const PLACEHOLDER = { video: "<video URL: drop or pick a file, or paste a URL>", audio: "<audio URL>" };

function shellQuote(text) {
  return `'${text.replaceAll("'", "'\\''")}'`;
}

function pyLiteral(value) {
  if (typeof value === "boolean") return value ? "True" : "False";
  if (value === null) return "None";
  if (typeof value === "number") return String(value);
  return JSON.stringify(String(value));
}

/** The submit body for *inputs* ({video, audio}) and *options*. */
export function requestBody(inputs, options) {
  return {
    video: inputs.video || PLACEHOLDER.video,
    audio: inputs.audio || PLACEHOLDER.audio,
    ...options,
  };
}

export function curlSnippet(baseUrl, body) {
  return [
    `curl -sS -X POST ${shellQuote(`${baseUrl}/api/v3/${MODEL_ID}`)} \\`,
    `  -H "Authorization: Bearer $WAVESPEED_API_KEY" \\`,
    `  -H 'Content-Type: application/json' \\`,
    `  -d ${shellQuote(JSON.stringify(body))}`,
    "",
    "# then poll data.urls.get until data.status is completed (or failed):",
    `curl -sS -H "Authorization: Bearer $WAVESPEED_API_KEY" ${shellQuote(`${baseUrl}/api/v3/predictions/<id>/result`)}`,
  ].join("\n");
}

function pyDict(body, indent) {
  const pad = " ".repeat(indent);
  const lines = Object.entries(body).map(([key, value]) => `${pad}    ${JSON.stringify(key)}: ${pyLiteral(value)},`);
  return ["{", ...lines, `${pad}}`].join("\n");
}

export function sdkSnippet(baseUrl, body) {
  return [
    "import os",
    "",
    "import wavespeed",
    "",
    `client = wavespeed.Client(api_key=os.environ["WAVESPEED_API_KEY"], base_url=${JSON.stringify(baseUrl)})`,
    `output = client.run(`,
    `    ${JSON.stringify(MODEL_ID)},`,
    `    ${pyDict(body, 4)},`,
    ")",
    'print(output["outputs"][0])',
  ].join("\n");
}

export function clientSnippet(baseUrl, body) {
  const { video, audio, ...options } = body;
  const args = [`${JSON.stringify(video)}`, `${JSON.stringify(audio)}`];
  for (const [key, value] of Object.entries(options)) args.push(`${key}=${pyLiteral(value)}`);
  return [
    "import os",
    "",
    "from lipsync.client import Client",
    "",
    `with Client(base_url=${JSON.stringify(baseUrl)}, api_key=os.environ["WAVESPEED_API_KEY"]) as client:`,
    "    prediction = client.run(",
    ...args.map((arg) => `        ${arg},`),
    "    )",
    '    client.download(prediction, "out.mp4")',
  ].join("\n");
}

/** All three snippets, keyed by the name of their tab. */
export function snippets(baseUrl, inputs, options) {
  const body = requestBody(inputs, options);
  return {
    curl: curlSnippet(baseUrl, body),
    sdk: sdkSnippet(baseUrl, body),
    client: clientSnippet(baseUrl, body),
  };
}

// The "Advanced" form, rendered from the OpenAPI schema of the submit request. Every property of the
// request except the inputs and WaveSpeed's transport flags becomes a field, so an option added to the
// request model appears here without touching the page. A field left blank is not sent: the server then
// applies its own default (which may differ from the schema's, e.g. a server started with another model
// version), and the request shows exactly what the person chose.

/** Request properties that are not options: the inputs, and flags the page sets itself. */
export const NOT_OPTIONS = new Set(["audio", "video", "enable_sync_mode", "enable_base64_output"]);

/** Follows `$ref` (local, `#/...`) and merges `allOf` into one object schema. */
export function resolveSchema(schema, doc, seen = new Set()) {
  if (!schema || typeof schema !== "object") return {};
  if (schema.$ref) {
    if (seen.has(schema.$ref)) return {};
    const target = schema.$ref.replace(/^#\//, "").split("/").reduce((node, key) => node && node[key], doc);
    const { $ref, ...rest } = schema;
    return resolveSchema({ ...target, ...rest }, doc, new Set([...seen, $ref]));
  }
  if (Array.isArray(schema.allOf)) {
    const { allOf, ...rest } = schema;
    const merged = { ...rest, properties: { ...(rest.properties || {}) }, required: [...(rest.required || [])] };
    for (const part of allOf) {
      const resolved = resolveSchema(part, doc, seen);
      Object.assign(merged.properties, resolved.properties || {});
      merged.required.push(...(resolved.required || []));
      for (const [key, value] of Object.entries(resolved)) {
        if (!(key in merged)) merged[key] = value;
      }
    }
    return merged;
  }
  return schema;
}

/** The request schema of `POST /api/v3/{model}` in *doc* (an OpenAPI document). */
export function requestSchema(doc, modelId) {
  const operation = doc.paths?.[`/api/v3/${modelId}`]?.post;
  const body = operation?.requestBody?.content?.["application/json"]?.schema;
  if (!body) throw new Error(`the OpenAPI document has no request body for /api/v3/${modelId}`);
  return resolveSchema(body, doc);
}

/** One option's field description: name, kind (enum|integer|number|boolean|string), bounds, default. */
export function describeField(name, raw, doc) {
  let schema = resolveSchema(raw, doc);
  // Optional fields are `anyOf: [X, {type: null}]`: describe X.
  if (Array.isArray(schema.anyOf)) {
    const concrete = schema.anyOf.map((s) => resolveSchema(s, doc)).find((s) => s.type !== "null");
    schema = { ...concrete, ...schema, anyOf: undefined };
  }
  // A choice between shapes (oneOf, e.g. `face`: "largest" or {"auto": true}) or an object: typed as JSON.
  const structured = Array.isArray(schema.oneOf) || schema.type === "object";
  const kind = schema.enum ? "enum" : structured ? "json" : schema.type || "string";
  return {
    name,
    kind,
    title: schema.title || name,
    description: schema.description || "",
    choices: schema.enum || null,
    minimum: schema.minimum ?? schema.exclusiveMinimum ?? null,
    maximum: schema.maximum ?? schema.exclusiveMaximum ?? null,
    default: schema.default ?? null,
    examples: Array.isArray(schema.examples) ? schema.examples : [],
  };
}

/** The option fields of a resolved request schema, in the schema's order. */
export function optionFields(schema, doc) {
  return Object.entries(schema.properties || {})
    .filter(([name]) => !NOT_OPTIONS.has(name))
    .map(([name, raw]) => describeField(name, raw, doc));
}

function control(field) {
  const id = `opt-${field.name}`;
  const shownDefault = field.default === null ? "server default" : `default ${field.default}`;
  if (field.kind === "enum" || field.kind === "boolean") {
    const select = document.createElement("select");
    select.id = id;
    const choices = field.kind === "boolean" ? [true, false] : field.choices;
    select.append(new Option(`(${shownDefault})`, ""));
    for (const choice of choices) select.append(new Option(String(choice), String(choice)));
    return select;
  }
  const input = document.createElement("input");
  input.id = id;
  if (field.kind === "integer" || field.kind === "number") {
    input.type = "number";
    input.step = field.kind === "integer" ? "1" : "any";
    if (field.minimum !== null) input.min = String(field.minimum);
    if (field.maximum !== null) input.max = String(field.maximum);
  } else {
    input.type = "text";
  }
  input.placeholder = shownDefault;
  if (field.kind === "json" && field.examples.length) {
    input.placeholder = `${shownDefault}; e.g. ${field.examples.map((e) => JSON.stringify(e)).join(" or ")}`;
  }
  return input;
}

/** Renders *fields* into *container*; returns a function that reads the chosen values. */
export function renderOptions(container, fields) {
  container.replaceChildren();
  const controls = new Map();
  for (const field of fields) {
    const row = document.createElement("div");
    row.className = "option";
    const label = document.createElement("label");
    const input = control(field);
    label.htmlFor = input.id;
    label.textContent = field.title;
    const help = document.createElement("small");
    help.textContent = field.description;
    row.append(label, input, help);
    container.append(row);
    controls.set(field.name, { field, input });
  }
  return () => readOptions(controls);
}

/** JSON when it parses (`{"auto": true}`), else the text itself (`largest`). */
function parseJsonOrText(text) {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function readOptions(controls) {
  const options = {};
  for (const [name, { field, input }] of controls) {
    const text = input.value.trim();
    if (text === "") continue;
    if (field.kind === "integer") options[name] = Number.parseInt(text, 10);
    else if (field.kind === "number") options[name] = Number.parseFloat(text);
    else if (field.kind === "boolean") options[name] = text === "true";
    else if (field.kind === "enum" && field.choices.every((c) => typeof c === "number")) options[name] = Number(text);
    else if (field.kind === "json") options[name] = parseJsonOrText(text);
    else options[name] = text;
  }
  return options;
}

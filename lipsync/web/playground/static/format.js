// Small display helpers.

export function seconds(ms) {
  return ms === null || ms === undefined ? "–" : `${(ms / 1000).toFixed(2)} s`;
}

export function duration(s) {
  if (!Number.isFinite(s)) return "–";
  if (s < 60) return `${s.toFixed(1)} s`;
  return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
}

export function localTime(iso) {
  const t = new Date(iso);
  return Number.isNaN(t.getTime()) ? iso : t.toLocaleString();
}

/** One line for a prediction's `face` report (the API's extension: which face was synced and how), or "". */
export function describeFace(face) {
  if (!face || typeof face !== "object") return "";
  if (face.fallback) return `Face: ${face.fallback} (${face.mode} fell back: ${face.reason || "no reason given"})`;
  const parts = [String(face.mode)];
  if (Number.isInteger(face.track)) parts.push(`track ${face.track}`);
  if (typeof face.score === "number") parts.push(`score ${face.score.toFixed(2)}`);
  if (Number.isInteger(face.frame)) parts.push(`from frame ${face.frame}`);
  return `Face: ${parts.join(", ")}`;
}

/** `el(tag, {attr: value}, ...children)`: DOM building without innerHTML (nothing is parsed as markup). */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "dataset") Object.assign(node.dataset, value);
    else if (key in node) node[key] = value;
    else node.setAttribute(key, value);
  }
  node.append(...children);
  return node;
}

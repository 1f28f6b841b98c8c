// The public API, seen from the page: the WaveSpeed routes plus the extensions (cancel, history, delete).
// The key travels only in the Authorization header, never in a URL. Every URL is relative to the page's
// directory, so the page works under a proxy's path prefix (LIPSYNC_PUBLIC_URL) as well as at the root.

export const MODEL_ID = "bytedance/lipsync/audio-to-video";

/** An API answer that is not a success: `code` (HTTP status or task code) and the server's message. */
export class ApiError extends Error {
  constructor(code, message) {
    super(message);
    this.name = "ApiError";
    this.code = code;
  }
}

/** The base URL of the API this page was served by (no trailing slash). */
export function baseUrlOf(location) {
  return new URL("./", location.href).href.replace(/\/$/, "");
}

export class Api {
  /** @param {string} baseUrl  @param {() => string} getKey */
  constructor(baseUrl, getKey) {
    this.baseUrl = baseUrl;
    this.getKey = getKey;
  }

  url(path) {
    return this.baseUrl + path;
  }

  async request(method, path, body) {
    const headers = { Authorization: `Bearer ${this.getKey()}` };
    const init = { method, headers };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(this.url(path), init);
    } catch (err) {
      throw new ApiError(0, `The server cannot be reached (${err.message})`);
    }
    let payload = null;
    try {
      payload = await response.json();
    } catch {
      payload = null;
    }
    if (!response.ok || (payload && typeof payload.code === "number" && payload.code !== 200)) {
      const message = (payload && payload.message) || response.statusText || "request failed";
      throw new ApiError(response.status, message);
    }
    return payload ? payload.data : null;
  }

  submit(body) {
    return this.request("POST", `/api/v3/${MODEL_ID}`, body);
  }

  result(id) {
    return this.request("GET", `/api/v3/predictions/${encodeURIComponent(id)}/result`);
  }

  cancel(id) {
    return this.request("POST", `/api/v3/predictions/${encodeURIComponent(id)}/cancel`);
  }

  history(page = 1, pageSize = 20) {
    return this.request("POST", "/api/v3/predictions", { page, page_size: pageSize });
  }

  remove(ids) {
    return this.request("POST", "/api/v3/predictions/delete", { ids });
  }

  /** The request schema of the submit route, from the server's OpenAPI document (no auth needed). */
  async openapi() {
    const response = await fetch(this.url("/openapi.json"));
    if (!response.ok) throw new ApiError(response.status, "the OpenAPI document is not available");
    return response.json();
  }

  /** `/healthz` of the real server (the mock has none: null). */
  async health() {
    try {
      const response = await fetch(this.url("/healthz"));
      if (!response.ok) return null;
      return (await response.json()).data;
    } catch {
      return null;
    }
  }

  /**
   * Uploads *file* through the ticket flow (POST /api/v3/media/uploads, then PUT to the signed URL with the
   * ticket's headers only) and resolves to the ticket's download_url. *onProgress* gets 0..1.
   */
  async upload(file, onProgress) {
    const ticket = await this.request("POST", "/api/v3/media/uploads", {
      filename: file.name || "upload",
      size: file.size,
      content_type: file.type || null,
    });
    await putWithProgress(ticket.upload, file, onProgress);
    return ticket.download_url;
  }
}

function putWithProgress(instruction, file, onProgress) {
  // fetch() reports no upload progress; XMLHttpRequest does.
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open(instruction.method || "PUT", instruction.url);
    for (const [name, value] of Object.entries(instruction.headers || {})) xhr.setRequestHeader(name, value);
    xhr.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) onProgress(event.loaded / event.total);
    });
    xhr.addEventListener("load", () => {
      if (xhr.status >= 200 && xhr.status < 300) {
        onProgress(1);
        resolve();
      } else {
        let message = xhr.statusText || "upload failed";
        try {
          message = JSON.parse(xhr.responseText).message || message;
        } catch {
          /* not JSON: keep the status text */
        }
        reject(new ApiError(xhr.status, message));
      }
    });
    xhr.addEventListener("error", () => reject(new ApiError(0, "the upload was interrupted")));
    xhr.send(file);
  });
}

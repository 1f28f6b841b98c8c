// The History tab: the key's past predictions (POST /api/v3/predictions), with open, download and delete.

import { el, localTime, seconds } from "./format.js";

export class History {
  constructor(api, { table, status, onOpen, onError }) {
    this.api = api;
    this.body = table.querySelector("tbody");
    this.status = status;
    this.onOpen = onOpen;
    this.onError = onError;
  }

  async refresh() {
    this.status.textContent = "Loading…";
    let page;
    try {
      page = await this.api.history(1, 50);
    } catch (err) {
      this.status.textContent = "";
      this.onError(err);
      return;
    }
    this.body.replaceChildren(...page.items.map((item) => this.row(item)));
    const total = page.total ?? page.items.length;
    this.status.textContent = total === 0 ? "No predictions yet for this key." : `${total} prediction(s)`;
  }

  row(item) {
    const output = item.outputs?.[0];
    const actions = el("td", { className: "actions" });
    const open = el("button", { type: "button", textContent: "Open", disabled: item.status !== "completed" && item.status !== "failed" });
    open.addEventListener("click", () => this.onOpen(item));
    actions.append(open);
    if (output) actions.append(el("a", { href: output, download: `${item.id}.mp4`, className: "button", textContent: "Download" }));
    const remove = el("button", { type: "button", textContent: "Delete", className: "danger" });
    remove.addEventListener("click", () => this.remove(item.id));
    actions.append(remove);
    const took = item.timings?.total ?? item.timings?.inference;
    return el(
      "tr",
      { dataset: { id: item.id, status: item.status } },
      el("td", { textContent: item.status, className: `status-${item.status}` }),
      el("td", { textContent: localTime(item.created_at) }),
      el("td", { textContent: took ? seconds(took) : "–" }),
      el("td", { textContent: item.id, className: "mono" }),
      actions,
    );
  }

  async remove(id) {
    try {
      await this.api.remove([id]);
    } catch (err) {
      this.onError(err);
    }
    await this.refresh();
  }
}

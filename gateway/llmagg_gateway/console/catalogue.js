// The discovery catalogue: every model with its state and limits, and the change history.
import { el, pill, table } from "./dom.js";
import { integer, limits } from "./format.js";

const STATE_KIND = { MODEL_STATE_ACTIVE: "good", MODEL_STATE_RETIRED: "bad", MODEL_STATE_SUSPENDED: "warn" };
const short = (value) => value.replace(/^(MODEL_STATE|CHANGE_KIND)_/, "").toLowerCase();
const price = (pricing) =>
  pricing && (Number(pricing.prompt) || Number(pricing.completion))
    ? `$${(Number(pricing.prompt) * 1e6).toFixed(2)} / $${(Number(pricing.completion) * 1e6).toFixed(2)} per M`
    : "free";

export function renderCatalogue(data) {
  const models = [...data.catalogue.models].sort((a, b) => (a.provider + a.model).localeCompare(b.provider + b.model));
  const rows = models.map((m) =>
    el("tr", { "data-model": `${m.provider}/${m.model}` },
      el("td", {}, m.provider), el("td", {}, m.model),
      el("td", { "data-testid": "model-state" }, pill(short(m.state), STATE_KIND[m.state]), " ",
        el("span", { class: "muted" }, m.state_reason)),
      el("td", { class: "num" }, m.context_length ? integer(m.context_length) : "–"),
      el("td", {}, limits(m.limits) || "–"),
      el("td", {}, price(m.pricing)),
      el("td", {}, (m.capabilities || []).join(", "))));
  const changes = data.changes.map((c) =>
    el("tr", { "data-kind": c.kind },
      el("td", {}, c.at.slice(0, 19).replace("T", " ")), el("td", {}, pill(short(c.kind))),
      el("td", {}, c.model ? `${c.provider}/${c.model}` : c.provider), el("td", {}, c.source), el("td", {}, c.detail)));
  return [
    el("h2", {}, `Models (revision ${data.catalogue.revision || 0})`),
    table(["Provider", "Model", "State", { label: "Context", num: true }, "Limits", "List price", "Capabilities"], rows,
      { "data-testid": "models" }),
    el("h2", {}, "Changes (last 7 days)"),
    table(["At (UTC)", "Change", "What", "Source", "Detail"], changes, { "data-testid": "changes" }),
  ];
}

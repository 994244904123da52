// The discovery catalogue: every model with its state and limits, and the change history.
import { el, pill, table } from "./dom.js";
import { integer, limits } from "./format.js";

const STATE_KIND = { MODEL_STATE_ACTIVE: "good", MODEL_STATE_RETIRED: "bad", MODEL_STATE_SUSPENDED: "warn" };
const short = (value) => value.replace(/^(MODEL_STATE|CHANGE_KIND)_/, "").toLowerCase();
const price = (pricing) =>
  pricing && (Number(pricing.prompt) || Number(pricing.completion))
    ? `$${(Number(pricing.prompt) * 1e6).toFixed(2)} / $${(Number(pricing.completion) * 1e6).toFixed(2)} per M`
    : "free";

const filter = { text: "", state: "" };
const matches = (m) =>
  (!filter.text || `${m.provider}/${m.model} ${m.name || ""}`.toLowerCase().includes(filter.text.toLowerCase())) &&
  (!filter.state || m.state === filter.state);

function controls(refresh) {
  const states = ["MODEL_STATE_ACTIVE", "MODEL_STATE_UNCONFIRMED", "MODEL_STATE_SUSPENDED", "MODEL_STATE_RETIRED"];
  return el("div", { class: "controls" },
    el("label", {}, "Filter ", el("input", { type: "search", value: filter.text, placeholder: "provider or model",
      "data-testid": "catalogue-filter", onchange: (event) => { filter.text = event.target.value.trim(); refresh(); } })),
    el("label", {}, "State ", el("select", { "data-testid": "catalogue-state",
      onchange: (event) => { filter.state = event.target.value; refresh(); } },
      el("option", { value: "" }, "any"),
      states.map((state) => el("option", { value: state, selected: filter.state === state }, short(state))))));
}

export function renderCatalogue(data, refresh) {
  const models = data.catalogue.models.filter(matches)
    .sort((a, b) => (a.provider + a.model).localeCompare(b.provider + b.model));
  const rows = models.map((m) =>
    el("tr", { "data-model": `${m.provider}/${m.model}` },
      el("td", {}, m.provider), el("td", {}, m.model),
      el("td", { "data-testid": "model-state" }, pill(short(m.state), STATE_KIND[m.state]), " ",
        el("span", { class: "muted" }, m.state_reason)),
      el("td", { class: "num" }, Number(m.context_length) ? integer(m.context_length) : "–"),
      el("td", {}, limits(m.limits) || "–"),
      el("td", {}, price(m.pricing)),
      el("td", {}, (m.capabilities || []).join(", "))));
  const changes = data.changes.filter((c) => !filter.text || `${c.provider}/${c.model}`.toLowerCase()
    .includes(filter.text.toLowerCase())).map((c) =>
    el("tr", { "data-kind": c.kind },
      el("td", {}, c.at.slice(0, 19).replace("T", " ")), el("td", {}, pill(short(c.kind))),
      el("td", {}, c.model ? `${c.provider}/${c.model}` : c.provider), el("td", {}, c.source), el("td", {}, c.detail)));
  return [
    controls(refresh),
    el("h2", {}, `Models (${models.length} of ${data.catalogue.models.length}, revision ${data.catalogue.revision || 0})`),
    table(["Provider", "Model", "State", { label: "Context", num: true }, "Limits", "Provider price", "Capabilities"], rows,
      { "data-testid": "models" }),
    el("h2", {}, "Changes (last 7 days)"),
    table(["At (UTC)", "Change", "What", "Source", "Detail"], changes, { "data-testid": "changes" }),
  ];
}

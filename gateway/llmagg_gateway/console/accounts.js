// Accounts and providers: enabled or why not, cooldowns with their end, circuits, latency; enable/disable.
import { patch } from "./api.js";
import { el, pill, table } from "./dom.js";
import { clock, integer, limits, ms, seconds } from "./format.js";

function circuitPill(circuit) {
  if (circuit.state === "closed") return pill("closed", "good");
  return pill(`${circuit.state} · ${circuit.failures} failures · ${seconds(circuit.reopens_in_s)}`, "bad");
}

function windowLine(w) {
  const full = w.used >= w.limit;
  return el("div", { "data-window": `${w.name} ${w.applies_to}` },
    pill(`${w.name} ${integer(w.used)}/${integer(w.limit)}`, full ? "bad" : w.used >= 0.8 * w.limit ? "warn" : "good"),
    " ", el("span", { class: "muted" }, `${w.applies_to} · resets ${w.resets_at.slice(11, 16)} UTC (in ${seconds(w.resets_in_s)})`));
}

export function renderAccounts(data, refresh) {
  const windows = new Map();
  for (const w of data.windows) windows.set(w.key.account, [...(windows.get(w.key.account) || []), w]);
  const routed = new Map();
  for (const provider of data.routing) for (const a of provider.accounts) routed.set(a.alias, a);
  const now = Date.now();
  const rows = data.accounts.map((account) => {
    const live = routed.get(account.alias) || { usable: false, cooling: [] };
    const toggle = async () => {
      await patch(`/v1/admin/accounts/${encodeURIComponent(account.alias)}`, { enabled: !account.enabled });
      await refresh();
    };
    return el("tr", { "data-alias": account.alias },
      el("td", {}, account.provider),
      el("td", {}, account.alias),
      el("td", { "data-testid": "state" }, account.enabled ? pill("enabled", "good")
        : [pill(`disabled by ${account.disabled_by || "admin"}`, "bad"), " ", el("span", { class: "muted" }, account.disabled_reason)]),
      el("td", {}, live.usable ? pill("yes", "good") : pill("no", "bad")),
      el("td", { "data-testid": "cooling" }, live.cooling.length ? live.cooling.map((c) =>
        el("div", {}, `${c.model}: ${seconds(c.remaining_s)} (until ${clock(new Date(now + c.remaining_s * 1000))})`)) : "–"),
      el("td", { "data-testid": "windows" }, (windows.get(account.alias) || []).map(windowLine)),
      el("td", {}, limits(account.limits) || el("span", { class: "muted" }, "registry")),
      el("td", { class: "num" }, String(account.priority)),
      el("td", {}, el("button", { class: "secondary", type: "button", "data-testid": "toggle", onclick: toggle },
        account.enabled ? "Disable" : "Enable")));
  });
  const providers = data.routing.map((provider) => {
    const meta = data.catalogue.providers.find((p) => p.id === provider.provider) || {};
    return el("tr", { "data-provider": provider.provider },
      el("td", {}, provider.provider),
      el("td", {}, meta.tier || ""),
      el("td", {}, limits(meta.limits) || "–"),
      el("td", {}, provider.endpoints.map((e) => el("div", {}, circuitPill(e.circuit)))),
      el("td", {}, provider.models.map((m) => el("div", {}, `${m.model} `, circuitPill(m.circuit), " ", ms(m.latency_ms)))));
  });
  return [
    el("h2", {}, "Accounts"),
    table(["Provider", "Account", "State", "Usable now", "Cooling down", "Quota windows (used/limit)", "Limit overrides", { label: "Priority", num: true }, ""],
      rows, { "data-testid": "accounts" }),
    el("h2", {}, "Providers"),
    table(["Provider", "Tier", "Free limits", "Endpoint circuit", "Models: circuit, observed latency"], providers,
      { "data-testid": "providers" }),
  ];
}

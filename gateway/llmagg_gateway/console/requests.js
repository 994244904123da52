// The latest attempts from the usage ledger (GET /v1/admin/usage/recent): who asked, which account and
// model answered or failed and how, how fast, the tokens. Client key ids are shown with their names.
import { get } from "./api.js";
import { el, pill, table } from "./dom.js";
import { integer, ms, usd } from "./format.js";

const LIMIT = 100;
const OUTCOME_KIND = { ok: "good", rate_limited: "warn" };

export async function renderRequests() {
  const [recent, keys] = await Promise.all([get(`/v1/admin/usage/recent?limit=${LIMIT}`), get("/v1/admin/keys")]);
  const names = new Map((keys.keys || []).map((key) => [key.id, key.name]));
  const rows = (recent.data || []).map((a) =>
    el("tr", { "data-testid": "attempt" },
      el("td", {}, a.at.slice(0, 19).replace("T", " ")),
      el("td", { "data-testid": "client" }, names.has(a.client_id) ? `${names.get(a.client_id)} (${a.client_id})` : a.client_id),
      el("td", { "data-testid": "route" }, `${a.provider}/${a.model}`), el("td", {}, a.account),
      el("td", { "data-testid": "outcome" }, pill(a.outcome, OUTCOME_KIND[a.outcome] || "bad")),
      el("td", { class: "num", "data-testid": "latency" }, ms(a.latency_ms)),
      el("td", { class: "num", "data-testid": "tokens" }, `${integer(a.prompt_tokens)} / ${integer(a.completion_tokens)}`),
      el("td", { class: "num" }, usd(a.cost_avoided_usd))));
  return [
    el("h2", {}, `Latest ${LIMIT} attempts (newest first)`),
    el("p", { class: "muted" }, "One row per call to a provider, fallbacks included, as the usage ledger records it."),
    table(["Ended (UTC)", "Client key", "Provider/model", "Account", "Outcome", { label: "Latency", num: true },
      { label: "Tokens in / out", num: true }, { label: "Saved", num: true }], rows, { "data-testid": "attempts" }),
  ];
}

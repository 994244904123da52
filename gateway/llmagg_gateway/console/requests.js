// The latest attempts from the usage ledger (GET /v1/admin/usage/recent): who asked, for which model, which
// account and model answered or failed and how, how fast (to the end and to the first token), the tokens, and
// the attempt's trace in Jaeger when it was sampled. Client key ids are shown with their names.
import { get, settings } from "./api.js";
import { el, pill, table } from "./dom.js";
import { integer, ms, usd } from "./format.js";

const LIMIT = 100;
const OUTCOME_KIND = { ok: "good", rate_limited: "warn" };

// A link to the attempt's trace; only sampled attempts have a trace id (the others have no trace to show).
function traceLink(traceId, jaegerUi) {
  if (!traceId) return "\u2013";
  return el("a", { href: `${jaegerUi}/trace/${traceId}`, target: "_blank", rel: "noopener noreferrer",
    title: `trace ${traceId} in Jaeger` }, traceId.slice(0, 8));
}

export async function renderRequests() {
  const [recent, keys, site] = await Promise.all([get(`/v1/admin/usage/recent?limit=${LIMIT}`), get("/v1/admin/keys"),
    settings()]);
  const names = new Map((keys.keys || []).map((key) => [key.id, key.name]));
  const rows = (recent.data || []).map((a) =>
    el("tr", { "data-testid": "attempt" },
      el("td", {}, a.at.slice(0, 19).replace("T", " ")),
      el("td", { "data-testid": "client" }, names.has(a.client_id) ? `${names.get(a.client_id)} (${a.client_id})` : a.client_id),
      el("td", { "data-testid": "requested-model" }, a.requested_model || "\u2013"),
      el("td", { "data-testid": "route" }, `${a.provider}/${a.model}`), el("td", {}, a.account),
      el("td", { "data-testid": "outcome" }, pill(a.outcome, OUTCOME_KIND[a.outcome] || "bad")),
      el("td", { class: "num", "data-testid": "latency" }, ms(a.latency_ms)),
      el("td", { class: "num", "data-testid": "first-token" }, a.first_token_ms ? ms(a.first_token_ms) : "\u2013"),
      el("td", { class: "num", "data-testid": "tokens" }, `${integer(a.prompt_tokens)} / ${integer(a.completion_tokens)}`),
      el("td", { class: "num" }, usd(a.cost_avoided_usd)),
      el("td", { "data-testid": "trace" }, traceLink(a.trace_id, site.jaeger_ui))));
  return [
    el("h2", {}, `Latest ${LIMIT} attempts (newest first)`),
    el("p", { class: "muted" }, "One row per call to a provider, fallbacks included, as the usage ledger records it. ",
      "First token: to the first content chunk of a streamed answer. Trace: in Jaeger, for sampled requests."),
    table(["Ended (UTC)", "Client key", "Model asked", "Served by", "Account", "Outcome", { label: "Latency", num: true },
      { label: "First token", num: true }, { label: "Tokens in / out", num: true }, { label: "Saved", num: true }, "Trace"],
      rows, { "data-testid": "attempts" }),
  ];
}

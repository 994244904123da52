// Today at a glance: traffic, success, latency, tokens, what the free tiers saved, quota used per account.
import { get, usage } from "./api.js";
import { EMPTY, dailyLimit, totals } from "./data.js";
import { card, el, pill, table } from "./dom.js";
import { integer, ms, percent, usd } from "./format.js";

const RECENT = 500; // attempts the latency and time-to-first-token percentiles are taken over

// Nearest-rank percentile of sorted values (null when there are none).
export function percentile(sorted, share) {
  return sorted.length ? sorted[Math.max(0, Math.ceil(share * sorted.length) - 1)] : null;
}

export async function renderOverview(data) {
  const [recent, attempts] = await Promise.all([
    usage({ start: new Date(Date.now() - 5 * 60 * 1000).toISOString().slice(0, 19) + "Z" }),
    get(`/v1/admin/usage/recent?limit=${RECENT}`),
  ]);
  const served = (attempts.data || []).filter((a) => a.outcome === "ok");
  const latencies = served.map((a) => a.latency_ms).sort((a, b) => a - b);
  // Only streamed answers have a first token timed (first_token_ms 0: not measured).
  const firstTokens = served.filter((a) => a.first_token_ms > 0).map((a) => a.first_token_ms).sort((a, b) => a - b);
  const lastFive = (recent.data || []).reduce((sum, row) => sum + row.requests, 0);
  const all = totals(data.usageToday).get("all") || EMPTY;
  const byProvider = totals(data.usageToday, (row) => row.provider);
  const byAccount = totals(data.usageToday, (row) => row.account);
  const accountRows = data.accounts.map((account) => {
    const used = (byAccount.get(account.alias) || EMPTY).attempts;
    const limit = dailyLimit(account, data.catalogue);
    return el("tr", { "data-alias": account.alias },
      el("td", {}, account.provider), el("td", {}, account.alias),
      el("td", { class: "num", "data-testid": "quota-used" }, integer(used)),
      el("td", { class: "num", "data-testid": "quota-limit" }, limit ? integer(limit) : "no daily limit known"),
      el("td", {}, limit ? pill(percent(used / limit), used >= limit ? "bad" : used >= 0.8 * limit ? "warn" : "good") : ""));
  });
  const providerRows = [...byProvider.entries()].sort().map(([provider, t]) =>
    el("tr", { "data-provider": provider },
      el("td", {}, provider),
      el("td", { class: "num", "data-testid": "provider-requests" }, integer(t.requests)),
      el("td", { class: "num", "data-testid": "provider-attempts" }, integer(t.attempts)),
      el("td", { class: "num" }, percent(t.successRate)),
      el("td", { class: "num", "data-testid": "provider-tokens" }, integer(t.tokens)),
      el("td", { class: "num" }, ms(t.latency)),
      el("td", { class: "num", "data-testid": "provider-cost" }, usd(t.cost))));
  return [
    el("h2", {}, "Today (UTC)"),
    el("div", { class: "cards" },
      card("Requests served", integer(all.requests), "requests-today"),
      card("Provider attempts", integer(all.attempts), "attempts-today", "fallbacks included"),
      card("Attempt success rate", percent(all.successRate), "success-rate"),
      card("Average latency", ms(all.latency), "latency-avg", "successful attempts"),
      card("p50 / p95 latency", `${ms(percentile(latencies, 0.5))} / ${ms(percentile(latencies, 0.95))}`, "latency-percentiles",
        `the latest ${latencies.length} successful attempts`),
      card("p50 / p95 time to first token", `${ms(percentile(firstTokens, 0.5))} / ${ms(percentile(firstTokens, 0.95))}`,
        "ttft-percentiles", `the latest ${firstTokens.length} streamed answers, to their first content chunk`),
      card("Tokens", integer(all.tokens), "tokens-today", `${integer(all.prompt)} in · ${integer(all.completion)} out`),
      card("Saved at list prices", usd(all.cost), "cost-today", "the registry's list_price of each model"),
      card("Requests / min", (lastFive / 5).toFixed(1), "requests-per-minute", "last 5 minutes")),
    el("h2", {}, "Per provider"),
    table(["Provider", { label: "Requests", num: true }, { label: "Attempts", num: true }, { label: "Success", num: true },
      { label: "Tokens", num: true }, { label: "Avg latency", num: true }, { label: "Saved", num: true }],
      providerRows, { "data-testid": "providers-today" }),
    el("h2", {}, "Free quota used today"),
    table(["Provider", "Account", { label: "Requests", num: true }, { label: "Per day", num: true }, "Used"],
      accountRows, { "data-testid": "quota" }),
  ];
}

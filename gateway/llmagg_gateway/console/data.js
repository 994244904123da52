// What every page reads, fetched together on each refresh (five admin GETs, then the quota windows).
import { get, post, usage } from "./api.js";
import { today } from "./format.js";

export async function snapshot() {
  const [routing, accounts, catalogue, changes, usageToday] = await Promise.all([
    get("/v1/admin/routing"),
    get("/v1/admin/accounts"),
    get("/v1/admin/discovery/catalog?include_retired=true"),
    get("/v1/admin/discovery/changes?since=7d&limit=200"),
    usage({ start: today(), group_by: ["provider", "account", "outcome"] }),
  ]);
  const providers = routing.providers || [];
  return {
    routing: providers,
    meta: routing.meta_controller || null,
    windows: await quotaWindows(providers),
    accounts: accounts.accounts || [],
    catalogue: catalogue.catalog || { providers: [], models: [] },
    sources: catalogue.sources || [],
    changes: changes.changes || [],
    usageToday: usageToday.data || [],
  };
}

// Every limited quota window of every account (its pool, or each model of its provider), read from ratelimit.
async function quotaWindows(routing) {
  const keys = routing.flatMap((p) => p.accounts.flatMap((a) =>
    p.models.map((m) => ({ provider: p.provider, account: a.alias, model: m.model }))));
  if (!keys.length) return [];
  return (await post("/v1/admin/quotas", { keys: keys.slice(0, 500) })).windows || [];
}

// Sums usage rows into one total per key (a function of the row).
export function totals(rows, keyOf = () => "all") {
  const out = new Map();
  for (const row of rows) {
    const key = keyOf(row);
    const t = out.get(key) || { requests: 0, attempts: 0, ok: 0, tokens: 0, prompt: 0, completion: 0, cost: 0,
      latencyWeighted: 0 };
    t.requests += row.requests;
    t.attempts += row.attempts;
    t.tokens += row.total_tokens;
    t.prompt += row.prompt_tokens;
    t.completion += row.completion_tokens;
    t.cost += row.cost_avoided_usd;
    if (row.outcome === "ok") {
      t.ok += row.attempts;
      t.latencyWeighted += row.latency_ms_avg * row.attempts;
    }
    out.set(key, t);
  }
  for (const t of out.values()) {
    t.successRate = t.attempts ? t.ok / t.attempts : null;
    t.latency = t.ok ? t.latencyWeighted / t.ok : null;
  }
  return out;
}

export const EMPTY = totals([{ requests: 0, attempts: 0, total_tokens: 0, prompt_tokens: 0, completion_tokens: 0,
  cost_avoided_usd: 0, outcome: "" }]).get("all");

// The requests-per-day limit of an account: its own override, else its provider's free limit.
export function dailyLimit(account, catalogue) {
  if (account.limits && account.limits.rpd) return account.limits.rpd;
  const provider = catalogue.providers.find((p) => p.id === account.provider);
  return provider && provider.limits ? provider.limits.rpd || null : null;
}

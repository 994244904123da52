// Usage over time from the ledger: by provider, account, model or client key; a chart, a table, CSV.
import { usage } from "./api.js";
import { stackedBars } from "./chart.js";
import { el, table } from "./dom.js";
import { bucketStarts, integer, ms, usd } from "./format.js";

const RANGES = { "24h": 24, "7d": 24 * 7, "30d": 24 * 30 };
const DIMENSIONS = { provider: "Provider", account: "Account", model: "Model", client_id: "Client key" };
const METRICS = { requests: "Requests", attempts: "Attempts", total_tokens: "Tokens", cost_avoided_usd: "Saved (USD)" };
const state = { range: "24h", bucket: "hour", by: "provider", metric: "requests" };
export const CSV_COLUMNS = ["bucket_start", "provider", "account", "model", "client_id", "requests", "attempts",
  "prompt_tokens", "completion_tokens", "total_tokens", "latency_ms_avg", "cost_avoided_usd"];

function select(name, options, refresh) {
  return el("select", { "data-testid": `usage-${name}`, onchange: (event) => { state[name] = event.target.value; refresh(); } },
    Object.entries(options).map(([value, label]) => el("option", { value, selected: state[name] === value }, label)));
}

// A text cell a spreadsheet would run as a formula (= + - @, tab, CR) gets a leading quote; numbers stay.
function csvCell(value) {
  const raw = String(value ?? "");
  const text = typeof value !== "number" && /^[=+\-@\t\r]/.test(raw) ? `'${raw}` : raw;
  return /[",\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

export function toCsv(rows) {
  return [CSV_COLUMNS.join(","), ...rows.map((row) => CSV_COLUMNS.map((c) => csvCell(row[c])).join(","))].join("\n") + "\n";
}

function download(rows) {
  const url = URL.createObjectURL(new Blob([toCsv(rows)], { type: "text/csv" }));
  const link = el("a", { href: url, download: `llmagg-usage-${state.by}-${state.range}.csv` });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

export async function renderUsage(_data, refresh) {
  const startMs = Date.now() - RANGES[state.range] * 3600 * 1000;
  const start = new Date(startMs).toISOString().slice(0, 19) + "Z";
  const answer = await usage({ start, bucket: state.bucket, group_by: [state.by] });
  const rows = answer.data || [];
  const buckets = [...new Set([...bucketStarts(startMs, state.bucket), ...rows.map((r) => r.bucket_start)])].sort();
  const groups = [...new Set(rows.map((r) => r[state.by]))].sort();
  const series = groups.map((name) => ({
    name,
    values: buckets.map((b) => rows.filter((r) => r.bucket_start === b && r[state.by] === name)
      .reduce((sum, r) => sum + r[state.metric], 0)),
  }));
  const label = (b) => (state.bucket === "hour" ? b.slice(5, 13).replace("T", " ") + "h" : b.slice(0, 10));
  const sums = groups.map((name) => {
    const mine = rows.filter((r) => r[state.by] === name);
    const sum = (field) => mine.reduce((total, r) => total + r[field], 0);
    const attempts = sum("attempts");
    const latency = attempts ? mine.reduce((t, r) => t + r.latency_ms_avg * r.attempts, 0) / attempts : null;
    return el("tr", { "data-group": name }, el("td", {}, name || "(none)"),
      el("td", { class: "num", "data-testid": "usage-requests" }, integer(sum("requests"))),
      el("td", { class: "num", "data-testid": "usage-attempts" }, integer(attempts)),
      el("td", { class: "num", "data-testid": "usage-tokens" }, integer(sum("total_tokens"))),
      el("td", { class: "num" }, ms(latency)),
      el("td", { class: "num" }, usd(sum("cost_avoided_usd"))));
  });
  return [
    el("div", { class: "controls" },
      el("label", {}, "Range ", select("range", { "24h": "last 24 hours", "7d": "last 7 days", "30d": "last 30 days" }, refresh)),
      el("label", {}, "Bucket ", select("bucket", { hour: "hour", day: "day" }, refresh)),
      el("label", {}, "By ", select("by", DIMENSIONS, refresh)),
      el("label", {}, "Chart ", select("metric", METRICS, refresh)),
      el("button", { type: "button", class: "secondary", "data-testid": "csv", onclick: () => download(rows) }, "Export CSV")),
    stackedBars(buckets.map(label), series, "usage-chart"),
    el("h2", {}, `Totals by ${DIMENSIONS[state.by].toLowerCase()}`),
    table([DIMENSIONS[state.by], { label: "Requests", num: true }, { label: "Attempts", num: true },
      { label: "Tokens", num: true }, { label: "Avg latency", num: true }, { label: "Saved", num: true }], sums,
      { "data-testid": "usage-totals" }),
  ];
}

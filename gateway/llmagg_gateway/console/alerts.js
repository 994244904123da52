// What needs an operator's eye, worked out from the same snapshot the pages show.
import { el, pill } from "./dom.js";
import { integer, seconds } from "./format.js";

export const NEAR_LIMIT = 0.8; // share of a quota window used that raises an alert

export function alerts(data) {
  const found = [];
  const add = (severity, kind, subject, text) => found.push({ severity, kind, subject, text });
  for (const account of data.accounts) {
    if (!account.enabled && account.disabled_by === "upstream") {
      add("critical", "key_rejected", account.alias,
        `${account.provider}/${account.alias}: key rejected by the provider — ${account.disabled_reason}`);
    }
  }
  for (const w of data.windows) {
    if (w.used >= NEAR_LIMIT * w.limit) {
      add(w.used >= w.limit ? "critical" : "warning", "near_limit", w.key.account,
        `${w.applies_to}: ${w.name} ${integer(w.used)} of ${integer(w.limit)} used, resets in ${seconds(w.resets_in_s)}`);
    }
  }
  for (const provider of data.routing) {
    for (const account of provider.accounts) {
      for (const cooling of account.cooling) {
        add("warning", "cooling", account.alias,
          `${provider.provider}/${account.alias} (${cooling.model}): rate limited, cooling for ${seconds(cooling.remaining_s)}`);
      }
    }
    const circuits = [
      ...provider.endpoints.map((e) => [e.endpoint, e.circuit]),
      ...provider.models.map((m) => [`${provider.provider}/${m.model}`, m.circuit]),
    ];
    for (const [name, circuit] of circuits) {
      if (circuit.state !== "closed") {
        add("critical", "circuit_open", name, `circuit ${circuit.state} for ${name} after ${circuit.failures} failures`);
      }
    }
  }
  for (const change of data.changes) {
    if (change.kind === "CHANGE_KIND_RETIRED") {
      const subject = change.model ? `${change.provider}/${change.model}` : change.provider;
      add("warning", "retired", subject, `${subject} retired ${change.at.slice(0, 16).replace("T", " ")}: ${change.detail}`);
    }
  }
  for (const source of data.sources) {
    if (source.consecutive_failures > 0) {
      add("warning", "source_failing", source.name,
        `discovery source ${source.name} failed ${source.consecutive_failures} times: ${source.last_error}`);
    }
  }
  return found;
}

export function renderAlerts(data) {
  const list = alerts(data);
  if (!list.length) return [el("h2", {}, "Alerts"), el("p", { class: "muted", "data-testid": "no-alerts" }, "Nothing needs attention.")];
  return [
    el("h2", {}, `Alerts (${list.length})`),
    el("ul", { class: "alerts", "data-testid": "alerts" },
      list.map((a) => el("li", { class: a.severity, "data-kind": a.kind, "data-subject": a.subject },
        pill(a.severity, a.severity === "critical" ? "bad" : "warn"), " ", a.text))),
    el("p", { class: "muted" }, "The same conditions are Prometheus alerting rules in deploy/prometheus/alerts.yaml."),
  ];
}

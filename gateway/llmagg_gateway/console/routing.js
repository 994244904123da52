// The meta-controller's scores (GET /v1/admin/routing: meta_controller.profiles): per task profile, what
// `auto` has learned of each model. Numbers are written as the tests write them (format.js and toFixed).
import { el, table } from "./dom.js";
import { ms, percent } from "./format.js";

const fixed = (value, digits) => (value === null || value === undefined ? "–" : Number(value).toFixed(digits));

function profileTable(profile, arms) {
  const rows = Object.entries(arms).map(([arm, s]) =>
    el("tr", { "data-model": arm },
      el("td", {}, arm),
      el("td", { class: "num", "data-testid": "attempts" }, fixed(s.attempts, 2)),
      el("td", { class: "num", "data-testid": "success_rate" }, percent(s.success_rate ?? null)),
      el("td", { class: "num", "data-testid": "quality" }, percent(s.quality ?? null)),
      el("td", { class: "num", "data-testid": "judged" }, fixed(s.judged, 2)),
      el("td", { class: "num", "data-testid": "ttft_ms" }, ms(s.ttft_ms ?? null)),
      el("td", { class: "num", "data-testid": "tokens_per_s" }, fixed(s.tokens_per_s, 1))));
  return [
    el("h2", {}, `Profile ${profile} (${rows.length} models)`),
    table(["Model", { label: "Attempts", num: true }, { label: "Success", num: true }, { label: "Quality", num: true },
      { label: "Judged", num: true }, { label: "Time to first content", num: true }, { label: "Tokens/s", num: true }],
    rows, { "data-profile": profile }),
  ];
}

export function renderRouting(data) {
  if (!data.meta) return [el("p", {}, "The meta-controller is off on this router (ROUTER_META_CONTROLLER).")];
  const sections = Object.entries(data.meta.profiles || {}).flatMap(([profile, arms]) => profileTable(profile, arms));
  return [
    el("p", { class: "muted" },
      "What `auto` has learned per task profile (docs/routing.md): attempts and judged answers are discounted ",
      "sums, so a model that got worse loses its lead; the meta-controller samples from these to choose."),
    el("div", { "data-testid": "routing" },
      sections.length ? sections : el("p", {}, "Nothing learned yet: no request has been served since the start.")),
  ];
}

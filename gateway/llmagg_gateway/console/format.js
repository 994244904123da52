// One way to write each kind of number, so that the pages and the tests agree.
export function integer(value) {
  return String(Math.round(Number(value) || 0)).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
}
// Free-tier savings are often fractions of a cent: small amounts keep six decimals.
export function usd(value) {
  const amount = Number(value) || 0;
  return `$${amount.toFixed(amount >= 1 ? 2 : 6)}`;
}
export const percent = (share) => (share === null ? "–" : `${(share * 100).toFixed(1)}%`);
export const ms = (value) => (value === null || value === undefined ? "–" : `${Math.round(value)} ms`);
export function seconds(value) {
  const s = Math.ceil(Number(value) || 0);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}
export const clock = (date) => date.toISOString().slice(11, 19) + " UTC";
export const limits = (map) =>
  Object.entries(map || {})
    .map(([name, value]) => `${name} ${integer(value)}`)
    .join(" · ");
// The start of today, UTC, as the usage route takes it.
export const today = () => new Date().toISOString().slice(0, 10);
// Every bucket start (as the usage route writes it) from `startMs` to now: empty hours are drawn too.
export function bucketStarts(startMs, bucket) {
  const step = bucket === "day" ? 86400000 : 3600000;
  const starts = [];
  for (let t = Math.floor(startMs / step) * step; t <= Date.now(); t += step) {
    starts.push(new Date(t).toISOString().replace(".000Z", "Z"));
  }
  return starts;
}

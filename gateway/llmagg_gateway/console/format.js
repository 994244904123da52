// One way to write each kind of number, so that the pages and the tests agree.
export function integer(value) {
  return String(Math.round(Number(value) || 0)).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
}
export const usd = (value) => `$${(Number(value) || 0).toFixed(4)}`;
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

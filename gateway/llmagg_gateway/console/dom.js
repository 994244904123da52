// Builds elements with text only (never innerHTML): model names and reasons come from providers.
export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (name === "class") node.className = value;
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function card(label, value, testid, note) {
  return el(
    "div",
    { class: "card" },
    el("div", { class: "label" }, label),
    el("div", { class: "value", "data-testid": testid }, value),
    note ? el("div", { class: "note" }, note) : null,
  );
}

export function table(headers, rows, attributes = {}) {
  return el(
    "table",
    attributes,
    el("thead", {}, el("tr", {}, headers.map((h) => el("th", { class: h.num ? "num" : undefined }, h.label ?? h)))),
    el("tbody", {}, rows),
  );
}

export const pill = (text, kind) => el("span", { class: `pill ${kind || ""}` }, text);

// The console's shell: sign-in, navigation by #page, and a refresh of the page shown every 3 seconds.
import { ApiError, signIn, signOut, signedIn } from "./api.js";
import { renderAccounts } from "./accounts.js";
import { alerts, renderAlerts } from "./alerts.js";
import { renderCatalogue } from "./catalogue.js";
import { snapshot } from "./data.js";
import { clock } from "./format.js";
import { renderOverview } from "./overview.js";
import { renderRequests } from "./requests.js";
import { renderRouting } from "./routing.js";
import { renderUsage } from "./usage.js";

const PAGES = { overview: renderOverview, accounts: renderAccounts, usage: renderUsage, requests: renderRequests,
  catalogue: renderCatalogue, routing: renderRouting, alerts: renderAlerts };
const REFRESH_MS = 3000;
const $ = (id) => document.getElementById(id);
let timer = null;
let running = false;

const current = () => (PAGES[location.hash.slice(1)] ? location.hash.slice(1) : "overview");

function showSignIn(message = "") {
  clearTimeout(timer);
  $("app").hidden = true;
  $("signin").hidden = false;
  $("signin-error").textContent = message;
  $("key").focus();
}

async function refresh() {
  if (running) return;
  running = true;
  clearTimeout(timer);
  const name = current();
  try {
    const data = await snapshot();
    const nodes = await PAGES[name](data, refresh);
    if (name === current()) {
      $("page").replaceChildren(...nodes);
      $("page").dataset.page = name;
    }
    const count = alerts(data).length;
    $("alert-count").hidden = count === 0;
    $("alert-count").textContent = String(count);
    $("banner").hidden = true;
    $("live").textContent = `live · ${clock(new Date())}`;
  } catch (error) {
    if (error instanceof ApiError && (error.status === 401 || error.status === 403)) {
      signOut();
      showSignIn(error.message);
      return;
    }
    $("banner").hidden = false;
    $("banner").textContent = `Could not refresh: ${error.message}`;
  } finally {
    running = false;
  }
  if (!$("app").hidden) timer = setTimeout(refresh, document.hidden ? REFRESH_MS * 5 : REFRESH_MS);
}

function showApp() {
  $("signin").hidden = true;
  $("app").hidden = false;
  for (const link of document.querySelectorAll("#nav a")) link.classList.toggle("active", link.dataset.page === current());
  refresh();
}

$("signin-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const key = $("key").value.trim();
  $("key").value = ""; // never kept in the page
  try {
    await signIn(key);
    showApp();
  } catch (error) {
    showSignIn(error.status === 403 ? `This key is not an admin key: ${error.message}` : error.message);
  }
});
$("signout").addEventListener("click", () => {
  signOut();
  showSignIn();
});
window.addEventListener("hashchange", () => signedIn() && showApp());
if (signedIn()) showApp();
else showSignIn();

// The dashboard: a hash-routed page per view, rendered from the gateway's JSON, kept live by
// the event stream. No framework and no build step: schools run this on an intranet, and
// every file it needs is served by the gateway itself.

import { HttpError, get, login, logout, session, stream } from "./api.js";
import { language, setLanguage, setTimeZone, t } from "./i18n.js";
import { failure, h, showLogin, statusText } from "./ui.js";
import { ADMIN_ONLY, NAV, NAV_PARENT, VIEWS } from "./views/index.js";

const state = {
  site: null,
  rooms: new Map(), // room id → { name, building }
  buildings: new Map(), // building id → name
  devices: new Map(), // device id → DeviceOut, newest values patched in from the stream
  view: null, // { name, arg, params, refresh }
  liveState: "connecting",
};

function route() {
  const [path, query = ""] = location.hash.replace(/^#\/?/, "").split("?");
  const [name, ...rest] = path.split("/");
  return {
    name: VIEWS[name] ? name : "overview",
    arg: rest.map(decodeURIComponent).join("/"),
    params: Object.fromEntries(new URLSearchParams(query)),
  };
}

function renderChrome() {
  const current = route().name;
  const lit = NAV_PARENT[current] ?? current;
  const nav = document.getElementById("nav");
  // The settings are an admin's: nobody else sees them in the menu.
  const shown = session()?.role === "admin" ? NAV : NAV.filter((name) => !ADMIN_ONLY.includes(name));
  // A district's account, looking at one of its schools on a district replica: the way back.
  const district = session()?.district && document.body.dataset.base
    ? [h("a", { href: "/district", class: "district-link" }, t("nav.district"))] : [];
  nav.replaceChildren(...district, ...shown.map((name) => h("a", {
    href: `#/${name}`, class: name === lit ? "active" : "", "aria-current": name === lit ? "page" : null,
  }, t(`nav.${name}`))));
  // On a phone the menu is folded behind one button that names the view shown.
  const menu = document.getElementById("menu");
  menu.replaceChildren(h("span", { class: "menu-icon", "aria-hidden": "true" }, "☰"), " ", t(`nav.${NAV.includes(lit) ? lit : "overview"}`));
  menu.setAttribute("aria-label", t("common.menu"));
  document.getElementById("lang").textContent = t("lang.switch");
  document.getElementById("lang").title = t("lang.name");
  const who = session();
  document.getElementById("user").textContent = who ? `${who.name} · ${t("user.logout")}` : t("user.login");
  renderLive();
}

function renderLive() {
  const el = document.getElementById("live");
  el.dataset.state = state.liveState;
  el.querySelector(".live-label").textContent = t(`live.${state.liveState === "down" ? "down" : state.liveState}`);
}

let renderSeq = 0;
async function render() {
  renderChrome();
  const r = route();
  const seq = ++renderSeq;
  const main = document.getElementById("view");
  const ctx = { ...r, state, rerender: render, refreshSoon, reloadSite: loadSite };
  const shown = r.arg ? `${r.name}/${r.arg}` : r.name;
  if (!state.view || state.view.name !== r.name || state.view.arg !== r.arg) {
    main.replaceChildren(h("p", { class: "muted" }, t("common.loading")));
    delete main.dataset.view;
  }
  const since = readingSeq;
  lastRefresh = Date.now();
  try {
    const node = await VIEWS[r.name].render(ctx);
    if (seq !== renderSeq) return; // a newer render started meanwhile
    for (const [key, { value, seq: at }] of recent) if (at > since) patch(node, key, value);
    main.replaceChildren(node);
    main.dataset.view = shown; // what is on the page now (tests wait for it)
    state.view = { name: r.name, arg: r.arg, live: VIEWS[r.name].live ?? [] };
  } catch (err) {
    if (seq !== renderSeq) return;
    if (err instanceof HttpError && err.status === 401) {
      showLogin(t("login.needed"), async (u, p) => { await login(u, p); await start(); });
      return;
    }
    // The gateway's own reason where it gives one a person can read, else a plain sentence.
    const reason = err instanceof HttpError && err.detail?.zh ? failure(err) : t("common.load_failed");
    main.replaceChildren(h("div", { class: "card error", role: "alert" }, h("p", {}, reason),
      h("button", { type: "button", onclick: render }, t("common.retry"))));
  }
}

// A view that summarises (overview, closing board, alerts) is fetched again when something
// it shows changes: soon after an alert or a door event, at most every READING_REFRESH_MS for
// readings (their values are patched in place at once anyway), so a busy site does not make
// every open browser hammer the gateway.
const EVENT_REFRESH_MS = 1000;
const READING_REFRESH_MS = 10_000;
let refreshTimer = null;
let refreshAt = Infinity;
let lastRefresh = 0;
function refreshSoon(minGapMs = EVENT_REFRESH_MS) {
  const at = Math.max(Date.now(), lastRefresh + minGapMs);
  if (refreshTimer && refreshAt <= at) return;
  clearTimeout(refreshTimer);
  refreshAt = at;
  refreshTimer = setTimeout(() => {
    refreshTimer = null;
    refreshAt = Infinity;
    lastRefresh = Date.now();
    render();
  }, at - Date.now());
}

// Readings that arrive while a view is being fetched would patch the old page and be lost
// when the new one replaces it (its data may be older): they are applied again after.
const recent = new Map(); // "device:metric" → { value, seq }
let readingSeq = 0;

function patch(root, key, value) {
  const [device, metric] = key.split(":");
  for (const el of root.querySelectorAll(`[data-live="${CSS.escape(key)}"]`)) {
    el.textContent = statusText(state, device, metric, value);
    el.dataset.value = String(value);
    el.classList.remove("flash");
    void el.offsetWidth; // restart the highlight
    el.classList.add("flash");
  }
}

function onReading(data) {
  const device = state.devices.get(data.device);
  if (device) {
    Object.assign(device.last_values, data.values);
    device.last_seen = new Date(data.ts).toISOString();
    device.online = true;
  }
  for (const [metric, value] of Object.entries(data.values)) {
    const key = `${data.device}:${metric}`;
    recent.delete(key); // re-inserted last: the map stays in arrival order
    recent.set(key, { value, seq: ++readingSeq });
    patch(document, key, value);
  }
  if (state.view?.live.includes("reading")) refreshSoon(READING_REFRESH_MS);
}

function onEvent(type, data) {
  if (type === "reading") onReading(data);
  // Changed in 设置: new rooms, devices, names. A page where someone may be typing (设置 itself)
  // is not drawn anew under them: a save made from older settings is refused and says so.
  else if (type === "settings") loadSite().then(() => VIEWS[state.view?.name]?.keepsInput || render());
  else if (state.view?.live.includes(type)) refreshSoon();
}

async function loadSite() {
  const [site, devices] = await Promise.all([get("/api/v1/site"), get("/api/v1/devices")]);
  state.site = site;
  setTimeZone(site.timezone);
  document.title = site.name;
  document.getElementById("site-name").textContent = site.name;
  state.rooms.clear();
  state.buildings.clear();
  for (const b of site.buildings) {
    state.buildings.set(b.id, b.name);
    for (const r of b.rooms) state.rooms.set(r.id, { name: r.name, building: b.id, type: r.type });
  }
  state.devices = new Map(devices.map((d) => [d.id, d]));
}

let streaming = false;
async function start() {
  try {
    await loadSite();
  } catch (err) {
    if (err instanceof HttpError && err.status === 401) {
      renderChrome();
      showLogin(t("login.needed"), async (u, p) => { await login(u, p); await start(); });
      return;
    }
    throw err;
  }
  if (!streaming) {
    streaming = true;
    stream(onEvent, async (s) => {
      const was = state.liveState;
      state.liveState = s === "unauthorized" ? "down" : s;
      renderLive();
      // Back after a break (a gateway restart): what happened meanwhile is fetched anew.
      if (s === "connected" && was === "down") {
        await loadSite();
        render();
      }
    });
  }
  await render();
}

document.getElementById("lang").addEventListener("click", () => {
  setLanguage(language() === "zh-CN" ? "en" : "zh-CN");
  render();
});
document.getElementById("user").addEventListener("click", async () => {
  if (session()) {
    await logout();
    renderChrome();
  } else {
    showLogin("", async (u, p) => { await login(u, p); renderChrome(); render(); });
  }
});
document.getElementById("menu").addEventListener("click", () => {
  const top = document.querySelector(".top");
  top.classList.toggle("menu-open");
  document.getElementById("menu").setAttribute("aria-expanded", String(top.classList.contains("menu-open")));
});
window.addEventListener("hashchange", () => {
  document.querySelector(".top").classList.remove("menu-open");
  render();
});
document.addEventListener("session", renderChrome); // a login from a view's staff action
setLanguage(language());
start();

// Small building blocks of the views: elements, values with units, chips, the login dialog.

import { HttpError, login, session } from "./api.js";
import { isZh, num, pick, t, unitWord } from "./i18n.js";

/** An element: h("a", { href, class, onclick }, child, …). Text is always set as text. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(el.dataset, value);
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

/** Replaces `el`'s children, taken as h() takes them: lists flattened, null and false left out. */
export function refill(el, ...children) {
  el.replaceChildren(...children.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false));
  return el;
}

const DIGITS = { kWh: 1, "m³": 2, "°C": 1, W: 0, "L/min": 1, V: 0, A: 1, "%": 0, dBm: 0, h: 0 };

function metricOf(state, deviceId, key) {
  const device = state.devices.get(deviceId);
  const kind = device && state.site.kinds[device.kind];
  return kind?.metrics.find((m) => m.key === key);
}

/** A metric's value as people read it: "4.2 °C", "开着", "1,250 W". A state's words are its kind's. */
export function statusText(state, deviceId, key, value) {
  if (value === null || value === undefined) return "–";
  const metric = metricOf(state, deviceId, key);
  if (metric?.type === "state" || typeof value === "boolean") {
    return metric?.words ? pick(metric.words, value ? "true" : "false") : t(value ? "value.on" : "value.off");
  }
  const unit = metric?.unit ?? "";
  return `${num(value, DIGITS[unit] ?? 1)}${unit ? ` ${unitWord(unit)}` : ""}`;
}

export function metricLabel(state, deviceId, key) {
  const metric = metricOf(state, deviceId, key);
  return metric ? pick(metric, "label") : key;
}

/** A live value: updated in place when the stream brings a newer one. */
export function live(state, deviceId, key, value, attrs = {}) {
  return h("span", { ...attrs, dataset: { live: `${deviceId}:${key}`, value: String(value) } },
    statusText(state, deviceId, key, value));
}

export function chip(text, tone = "", attrs = {}) {
  return h("span", { ...attrs, class: `chip ${tone}` }, text);
}

export function card(title, body, attrs = {}) {
  return h("section", { ...attrs, class: `card ${attrs.class ?? ""}` }, title ? h("h2", {}, title) : null, body);
}

export function deviceLink(state, deviceId, name) {
  const device = state.devices.get(deviceId);
  return h("a", { href: `#/device/${encodeURIComponent(deviceId)}` }, name ?? device?.name ?? deviceId);
}

export function roomName(state, roomId) {
  return state.rooms.get(roomId)?.name ?? roomId;
}

export function dot(online) {
  return h("span", { class: `dot ${online ? "on" : "off"}`, title: t(online ? "common.online" : "common.offline") });
}

/** Hands a fetched file to the browser to save, as a link to it clicked would. */
export function saveFile(blob, filename) {
  const url = URL.createObjectURL(blob);
  const a = h("a", { href: url, download: filename, hidden: true });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/** A modal dialog; `build(close)` returns its content. */
export function dialog(build) {
  const el = document.getElementById("dialog");
  const close = () => el.close();
  el.replaceChildren(build(close));
  el.showModal();
  return close;
}

/** The login form; `onSubmit(user, password)` may throw to show a refusal. */
export function showLogin(message, onSubmit, onCancel = () => {}, onDone = () => {}) {
  dialog((close) => {
    const error = h("p", { class: "error-text", role: "alert" });
    const form = h("form", { method: "dialog", class: "form" },
      h("h2", {}, t("login.title")),
      message ? h("p", { class: "muted" }, message) : null,
      h("label", {}, t("login.username"), h("input", { name: "username", autocomplete: "username", required: true })),
      h("label", {}, t("login.password"),
        h("input", { name: "password", type: "password", autocomplete: "current-password", required: true })),
      error,
      h("div", { class: "actions" },
        h("button", { type: "button", class: "secondary", onclick: () => { close(); onCancel(); } }, t("common.cancel")),
        h("button", { type: "submit" }, t("login.submit"))));
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      try {
        await onSubmit(form.username.value, form.password.value);
        close();
        onDone();
      } catch (err) {
        error.textContent = loginRefusal(err);
      }
    });
    return form;
  });
}

/** Why a login failed, in the page's language (the gateway's own words are English). */
function loginRefusal(err) {
  if (!(err instanceof HttpError)) return t("login.offline");
  if (err.status === 429) return t("login.locked", { s: num(err.retryAfter ?? 60, 0) });
  if (err.status === 401 || err.status === 422) return t("login.wrong");
  return t("login.offline");
}

/** Logs in first when nobody is (or the login may not do staff work), then runs `next()`:
 * a person signs in before typing a comment or signing a record, not after. Resolves to
 * false when they cancel. */
export function signedIn(message = t("login.needed")) {
  const who = session();
  if (who && who.role !== "viewer") return Promise.resolve(true);
  return new Promise((resolve) => {
    showLogin(message, async (user, password) => {
      await login(user, password);
      document.dispatchEvent(new Event("session"));
    }, () => resolve(false), () => resolve(true));
  });
}

/** Runs a staff action; if it needs a login (401/403) asks for one and runs it again. */
export async function asStaff(action) {
  try {
    return await action();
  } catch (err) {
    if (!(err instanceof HttpError) || (err.status !== 401 && err.status !== 403)) throw err;
    if (!(await signedIn())) throw err;
    return action();
  }
}

/** A message for a failed action, in the page's language, with the gateway's reason where it
 * is one a person can act on (a 409's or 422's detail). */
export function failure(err) {
  if (!(err instanceof HttpError)) return t("action.offline");
  if (err.status === 403) return t("action.forbidden");
  if (err.status === 413) return t("action.too_large");
  if (err.detail?.zh) return isZh() ? err.detail.zh : err.detail.en;
  return t(err.status === 409 ? "action.conflict" : err.status === 422 ? "action.invalid" : "action.failed");
}

// Alerts: filters, acknowledgement with a comment, each alert's history.

import { get, send } from "../api.js";
import { num, pick, t, when } from "../i18n.js";
import { asStaff, chip, deviceLink, dialog, failure, h, signedIn } from "../ui.js";
import { SEVERITIES, SEVERITY_TONE, filters, select, where } from "./common.js";
import { dispatchDialog } from "./orders.js";

export function alertRow(state, a, onChange) {
  const ack = a.acked_by == null && a.state !== "cleared"
    ? h("button", { type: "button", class: "ack", dataset: { alert: a.id }, onclick: async () => { if (await signedIn()) ackDialog(a, onChange); } }, t("alerts.ack"))
    : null;
  // Its work order, or 派单 to open one (the same dialog as in the orders view).
  const order = a.work_order_id != null
    ? h("a", { class: "order-link", href: `#/orders/${a.work_order_id}` }, t("orders.open_order"))
    : h("button", { type: "button", class: "dispatch secondary", dataset: { alert: a.id },
      onclick: () => dispatchDialog(state, { alert: a }, (o) => { location.hash = `#/orders/${o.id}`; }) }, t("orders.dispatch"));
  const history = h("div", { class: "history" });
  return h("article", { class: `alert ${a.severity} ${a.state}`, dataset: { alert: a.id, state: a.state } },
    h("div", { class: "alert-head" },
      chip(t(`severity.${a.severity}`), SEVERITY_TONE[a.severity]),
      h("strong", { class: "grow" }, pick(a, "title")),
      chip(t(`state.${a.state}`), a.state === "active" ? "bad" : a.state === "cleared" ? "ok" : "info", { dataset: { role: "state" } })),
    h("p", {}, pick(a, "detail")),
    h("p", { class: "muted small" },
      // An alert about no device (a fire patrol not done in time) is the whole site's.
      state.devices.has(a.device_id) ? [deviceLink(state, a.device_id), ` · ${where(state, a)}`] : state.site.name,
      ` · ${t("alerts.first", { t: when(a.first) })}`,
      // Event time: a leak raised an hour after it began says both.
      a.raised_at && a.raised_at !== a.first ? ` · ${t("alerts.raised", { t: when(a.raised_at) })}` : "",
      a.count > 1 ? ` · ${t("alerts.count", { n: num(a.count, 0) })}` : "",
      a.cleared_at ? ` · ${t("alerts.cleared", { t: when(a.cleared_at) })}` : ""),
    a.acked_by ? h("p", { class: "small ack-note" }, t("alerts.acked_by", { who: pick(a.acked_by_actor, "name"), t: when(a.acked_at) }),
      a.ack_comment ? `${t("common.colon")}${a.ack_comment}` : "") : null,
    h("div", { class: "actions" }, order, ack, h("button", {
      type: "button", class: "secondary", onclick: async () => {
        if (history.childElementCount) { history.replaceChildren(); return; }
        const detail = await get(`/api/v1/alerts/${a.id}`);
        history.replaceChildren(h("ol", {}, detail.history.map((e) => h("li", {},
          `${when(e.at)} · ${t(`transition.${e.action.replace("alert.", "")}`)} · ${pick(e.who, "name")}`,
          e.detail.comment ? `${t("common.colon")}${e.detail.comment}` : ""))));
      },
    }, t("alerts.history"))),
    history);
}

function ackDialog(alert, onChange) {
  dialog((close) => {
    const comment = h("textarea", { name: "comment", rows: 3, maxlength: 1000, placeholder: t("alerts.comment_hint") });
    const error = h("p", { class: "error-text", role: "alert" });
    const form = h("form", { class: "form" },
      h("h2", {}, t("alerts.ack_title")), h("p", {}, pick(alert, "title")),
      h("label", {}, t("alerts.comment"), comment), error,
      h("div", { class: "actions" },
        h("button", { type: "button", class: "secondary", onclick: close }, t("common.cancel")),
        h("button", { type: "submit" }, t("alerts.ack"))));
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      close();
      try {
        await asStaff(() => send("POST", `/api/v1/alerts/${alert.id}/ack`, { comment: comment.value }));
        onChange();
      } catch (err) {
        dialog((done) => h("div", { class: "form" }, h("p", { class: "error-text", role: "alert" }, failure(err)),
          h("button", { type: "button", onclick: done }, t("common.close"))));
      }
    });
    return form;
  });
  document.querySelector("#dialog textarea")?.focus();
}

async function alertsView({ state, params, rerender }) {
  // "open" (not cleared yet) is a filter of its own in the API; the others are states.
  const open = params.state === "open";
  const query = { open: open || null, state: open ? null : params.state, severity: params.severity, rule: params.rule, building: params.building, limit: 200 };
  const alerts = await get("/api/v1/alerts", query);
  return h("div", { class: "stack" },
    filters(params, [
      select("state", params.state ?? "", ["open", "active", "acknowledged", "cleared"].map((s) => [s, t(`state.${s}`)]), t("alerts.state")),
      select("severity", params.severity ?? "", SEVERITIES.map((s) => [s, t(`severity.${s}`)]), t("alerts.severity")),
      select("building", params.building ?? "", state.site.buildings.map((b) => [b.id, b.name]), t("alerts.building")),
      // The rules and their labels come from the registry, through /api/v1/site.
      select("rule", params.rule ?? "", Object.entries(state.site.rules).map(([id, r]) => [id, pick(r, "label")]), t("alerts.rule")),
    ], "alerts"),
    alerts.length ? alerts.map((a) => alertRow(state, a, rerender)) : h("p", { class: "muted" }, t("alerts.none")));
}

export default { render: alertsView, live: ["alert"] };

// Work orders (工单): by trade and status, overdue first.

import { get, send } from "../api.js";
import { pick, t, when } from "../i18n.js";
import { asStaff, chip, deviceLink, h } from "../ui.js";
import { filters, select, where } from "./common.js";

const STATUSES = ["open", "assigned", "on_site", "done"];
const TRADES = ["water", "electric", "carpentry", "other"];

async function orders({ state, params, rerender }) {
  const list_ = await get("/api/v1/work-orders", { trade: params.trade, status: params.status, overdue: params.overdue, limit: 500 });
  const next = (s) => STATUSES[STATUSES.indexOf(s) + 1];
  return h("div", { class: "stack" },
    filters(params, [
      select("trade", params.trade ?? "", TRADES.map((x) => [x, t(`trade.${x}`)]), t("orders.trade")),
      select("status", params.status ?? "", STATUSES.map((x) => [x, t(`status.${x}`)]), t("orders.status")),
      select("overdue", params.overdue ?? "", [["true", t("orders.overdue")]], t("orders.due_filter")),
    ], "orders"),
    list_.length ? list_.map((o) => h("article", { class: `order ${o.overdue ? "overdue" : ""} ${o.status}`, dataset: { order: o.id } },
      h("div", { class: "alert-head" },
        chip(t(`trade.${o.trade}`), "info"), h("strong", { class: "grow" }, pick(o, "title")),
        o.overdue ? chip(t("orders.overdue"), "bad") : null, chip(t(`status.${o.status}`), o.status === "done" ? "ok" : "")),
      h("p", { class: "muted small" }, deviceLink(state, o.device_id), ` · ${where(state, o)} · ${t("orders.opened", { t: when(o.opened) })} · `,
        h("span", { class: o.overdue ? "error-text" : "" }, t("orders.due", { t: when(o.due) })),
        o.assignee ? ` · ${t("orders.assignee")}: ${o.assignee}` : ""),
      o.note ? h("p", { class: "small" }, `${t("orders.note")}: ${o.note}`) : null,
      next(o.status) ? h("div", { class: "actions" }, h("button", {
        type: "button", onclick: async () => {
          await asStaff(() => send("PATCH", `/api/v1/work-orders/${o.id}`, { status: next(o.status) }));
          rerender();
        },
      }, t("orders.advance", { s: t(`status.${next(o.status)}`) }))) : null))
      : h("p", { class: "muted" }, t("orders.none")));
}

export default { render: orders, live: ["alert"] };

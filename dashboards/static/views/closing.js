// The closing board (闭园检查): per building, what is still open, on or flowing.

import { get } from "../api.js";
import { num, t, when } from "../i18n.js";
import { card, chip, deviceLink, h, live, roomName, statusText } from "../ui.js";
import { list } from "./common.js";

async function closing({ state }) {
  const c = await get("/api/v1/dashboard/closing");
  return h("div", { class: "grid" }, c.buildings.map((b) => {
    const lampsOut = b.lamps_on.filter((l) => !l.scheduled).length;
    const todo = b.doors_open.length + b.circuits.length + b.water.length + lampsOut;
    const status = b.closed_up ? chip(t("closing.ok"), "ok") : chip(t("closing.todo", { n: num(todo, 0) }), "bad");
    // Every check shows, ticked when nothing is left: the guard sees what was checked.
    const section = (key, items, render, pending = items.length) => h("div", { class: `check ${pending ? "todo" : "done"}` },
      h("h3", {}, h("span", { class: "mark", "aria-hidden": "true" }, pending ? "✗" : "✓"),
        pending ? t(`${key}.todo`, { n: num(pending, 0) }) : t(`${key}.done`)),
      items.length ? list(items, render, "") : null);
    const row = (item, ...right) => h("div", { class: "row" },
      h("span", { class: "grow" }, deviceLink(state, item.device, item.name), h("small", { class: "muted" }, ` ${roomName(state, item.room)}`)), ...right);
    return card(null, [
      h("div", { class: "closing-head" }, h("h2", {}, b.name), status),
      b.open_now ? h("p", { class: "muted" }, b.closes_at ? t("closing.open", { t: when(b.closes_at, "time") }) : t("closing.open_all_day")) : null,
      section("closing.doors", b.doors_open, (d) => row(d, d.open_since ? h("small", {}, t("common.since", { t: when(d.open_since, "time") })) : null)),
      section("closing.circuits", b.circuits, (x) => row(x, live(state, x.device, x.metric, x.power_w),
        h("small", { class: "muted" }, ` ${t("closing.limit", { v: statusText(state, x.device, x.metric, x.limit_w) })}`))),
      section("closing.water", b.water, (x) => row(x, live(state, x.device, x.metric, x.flow_lpm))),
      section("closing.lamps", b.lamps_on, (x) => row(x, x.scheduled ? chip(t("closing.scheduled"), "info")
        : chip(statusText(state, x.device, x.metric, true), "bad")), lampsOut),
    ], { class: `closing ${b.closed_up ? "good" : "bad"} ${b.open_now ? "open" : ""}`, "data-building": b.id });
  }));
}

export default { render: closing, live: ["reading", "event", "alert"] };

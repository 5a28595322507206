// Buildings and rooms: every room's devices with their live values.

import { get } from "../api.js";
import { pick, t } from "../i18n.js";
import { card, dot, h, live, metricLabel } from "../ui.js";

function deviceTile(state, d, alerting) {
  const kind = state.site.kinds[d.kind];
  // What the kind shows on a tile: link health is left to the device's own page (the dot says online).
  const keys = kind.metrics.filter((m) => m.tile && m.key in d.last_values).map((m) => m.key);
  return h("a", { href: `#/device/${encodeURIComponent(d.id)}`, class: `tile device ${alerting ? "bad" : ""}`, dataset: { device: d.id } },
    h("span", { class: "tile-name" }, dot(d.online), d.name || d.id),
    h("small", { class: "muted" }, pick(kind, "label")),
    h("dl", { class: "values" }, keys.map((k) => [h("dt", {}, metricLabel(state, d.id, k)),
      h("dd", {}, live(state, d.id, k, d.last_values[k]))])));
}

async function buildings({ state }) {
  const [devices, open] = await Promise.all([get("/api/v1/devices"), get("/api/v1/alerts", { open: true, limit: 1000 })]);
  state.devices = new Map(devices.map((d) => [d.id, d]));
  const alerting = new Set(open.map((a) => a.device_id));
  return h("div", { class: "stack" }, state.site.buildings.map((b) => card(b.name, h("div", { class: "rooms" },
    b.rooms.map((r) => {
      const inRoom = devices.filter((d) => d.room === r.id);
      return h("div", { class: "room" }, h("h3", {}, r.name),
        inRoom.length ? h("div", { class: "tiles" }, inRoom.map((d) => deviceTile(state, d, alerting.has(d.id))))
          : h("p", { class: "muted small" }, t("buildings.no_devices")));
    })))));
}

export default { render: buildings, live: ["alert"] };

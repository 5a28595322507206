// The views, by route name. Each module's default export is `{ render(ctx), live, keepsInput }`:
// `render` fetches what the view shows and returns its element; `live` names the stream events
// after which it is fetched again (readings patch values in place anyway); `keepsInput`, that it
// is not drawn anew when the settings change (someone may be typing in it). `NAV` is the menu, in
// order; a view not in it (a device's page) is reached by links.

import alerts from "./alerts.js";
import buildings from "./buildings.js";
import closing from "./closing.js";
import device from "./device.js";
import ledger from "./ledger.js";
import orders from "./orders.js";
import overview from "./overview.js";
import patrol from "./patrol.js";
import reports from "./reports.js";
import samples from "./samples.js";
import settings from "./settings.js";
import sweep from "./sweep.js";

export const VIEWS = { overview, closing, sweep, buildings, device, alerts, orders, samples, patrol, ledger, reports, settings };

export const NAV = ["overview", "closing", "samples", "patrol", "ledger", "orders", "alerts", "reports", "buildings", "sweep", "settings"];

/** Views only an admin sees in the menu (anyone else reaching one is told it needs an admin). */
export const ADMIN_ONLY = ["settings"];

/** The menu entry that stays lit on a page reached from it. */
export const NAV_PARENT = { device: "buildings" };

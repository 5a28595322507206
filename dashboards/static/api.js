// The gateway's HTTP API as the dashboard uses it: JSON with the session token, and the live
// stream (server-sent events read with fetch, so that the token travels in a header and
// never in a URL), which reconnects by itself.

const TOKEN_KEY = "facility.token";
const USER_KEY = "facility.user";
const NAME_KEY = "facility.name";
const ROLE_KEY = "facility.role";
const DISTRICT_KEY = "facility.district";

// Where this school's gateway answers: "" when it has the origin to itself, `/sites/<id>` when
// a district replica serves it beside others. Every path below is the gateway's, from its root.
const BASE = document.body?.dataset.base ?? "";

/** A gateway path as the browser reaches it. */
function at(path) {
  return path.startsWith("/") ? BASE + path : path;
}

export class HttpError extends Error {
  constructor(status, detail, retryAfter = null) {
    super(`${status}: ${detail}`);
    this.status = status;
    this.detail = detail;
    this.retryAfter = retryAfter; // seconds, from a 429's Retry-After
  }
}

/** Who is logged in on this browser: { user (login id), name (as people read it), role, token,
 * district (an account of the district, which signs in at every school) }. */
export function session() {
  const user = localStorage.getItem(USER_KEY);
  return user ? {
    user, name: localStorage.getItem(NAME_KEY) || user, role: localStorage.getItem(ROLE_KEY),
    token: localStorage.getItem(TOKEN_KEY), district: localStorage.getItem(DISTRICT_KEY) === "1",
  } : null;
}

function headers(extra = {}) {
  const token = localStorage.getItem(TOKEN_KEY);
  return token ? { ...extra, Authorization: `Bearer ${token}` } : extra;
}

async function failure(res) {
  let detail = res.statusText;
  try {
    const body = await res.json();
    // A sentence; both languages' ({ zh, en }, for what a person is refused); or what failed validation.
    detail = typeof body.detail === "string" || body.detail?.zh ? body.detail : JSON.stringify(body.detail);
  } catch { /* not JSON: keep the status text */ }
  if (res.status === 401) forget();
  return new HttpError(res.status, detail, Number(res.headers.get("Retry-After")) || null);
}

export async function get(path, params = {}) {
  const query = new URLSearchParams(Object.entries(params).filter(([, v]) => v !== "" && v != null));
  const url = query.toString() ? `${path}?${query}` : path;
  const res = await fetch(at(url), { headers: headers() });
  if (!res.ok) throw await failure(res);
  return res.json();
}

/** A file the gateway serves behind the login (a work order's photo), as a Blob. */
export async function blob(path) {
  const res = await fetch(at(path), { headers: headers() });
  if (!res.ok) throw await failure(res);
  return res.blob();
}

export async function send(method, path, body) {
  // A FormData body (a photo) goes as multipart; anything else as JSON.
  const form = body instanceof FormData;
  const res = await fetch(at(path), {
    method, headers: form ? headers() : headers({ "Content-Type": "application/json" }),
    body: form ? body : JSON.stringify(body),
  });
  if (!res.ok) throw await failure(res);
  return res.status === 204 ? null : res.json();
}

export async function login(username, password) {
  const out = await send("POST", "/api/v1/auth/login", { username, password });
  localStorage.setItem(TOKEN_KEY, out.token);
  localStorage.setItem(USER_KEY, out.user);
  localStorage.setItem(NAME_KEY, out.display_name);
  localStorage.setItem(ROLE_KEY, out.role);
  localStorage.setItem(DISTRICT_KEY, out.district ? "1" : "0");
  return out;
}

export async function logout() {
  try {
    await send("POST", "/api/v1/auth/logout", {});
  } finally {
    forget();
  }
}

function forget() {
  for (const key of [TOKEN_KEY, USER_KEY, NAME_KEY, ROLE_KEY, DISTRICT_KEY]) localStorage.removeItem(key);
}

/**
 * Reads /api/v1/live for as long as the page lives. `onEvent(type, data)` gets each event;
 * `onState("connected" | "down")` each change of the connection. After a break (a gateway
 * restart) it waits the server's `retry:` time, growing to 10 s while the gateway stays away.
 */
export function stream(onEvent, onState) {
  let retryMs = 1000;
  let failures = 0;
  const connect = async () => {
    try {
      const res = await fetch(at("/api/v1/live"), { headers: headers({ Accept: "text/event-stream" }), cache: "no-store" });
      if (!res.ok) throw await failure(res);
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          let type = "message";
          const data = [];
          for (const line of block.split("\n")) {
            if (line.startsWith("event:")) type = line.slice(6).trim();
            else if (line.startsWith("data:")) data.push(line.slice(5).trimStart());
            else if (line.startsWith("retry:")) retryMs = Number(line.slice(6)) || retryMs;
          }
          if (type === "hello") {
            failures = 0;
            onState("connected");
          } else if (data.length) {
            onEvent(type, JSON.parse(data.join("\n")));
          }
        }
      }
    } catch (err) {
      if (err instanceof HttpError && err.status === 401) onState("unauthorized");
    }
    failures += 1;
    onState("down");
    setTimeout(connect, Math.min(10_000, retryMs * failures));
  };
  connect();
}

/** A file the gateway renders (a report's PDF, HTML or CSV), fetched with the session token:
 * `{ blob, filename }`, the name from Content-Disposition or else `fallback`. */
export async function download(path, params, fallback) {
  const query = new URLSearchParams(Object.entries(params).filter(([, v]) => v !== "" && v != null));
  const res = await fetch(at(`${path}?${query}`), { headers: headers() });
  if (!res.ok) throw await failure(res);
  const disposition = res.headers.get("Content-Disposition") ?? "";
  const utf8 = /filename\*=UTF-8''([^;]+)/i.exec(disposition);
  const plain = /filename="([^"]+)"/i.exec(disposition);
  const filename = utf8 ? decodeURIComponent(utf8[1]) : plain ? plain[1] : fallback;
  return { blob: await res.blob(), filename };
}

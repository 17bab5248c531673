// icebox console. Plain JavaScript, no build step, served under a strict
// Content-Security-Policy. Every page is built with DOM calls: text from the
// server (function names, log lines, payloads, errors) only ever lands in
// textContent, never in HTML.
"use strict";

(() => {
  const CSRF_HEADER = "X-Icebox-Console-Csrf";
  const enc = new TextEncoder();
  const state = { session: null, timers: [], charts: [] };
  const main = document.getElementById("main");

  // --- DOM helpers -------------------------------------------------------

  // el builds an element: attrs are properties or attributes, children are
  // nodes or strings (made text nodes).
  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "class") e.className = v;
      else if (k === "text") e.textContent = v;
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? "" : String(v));
    }
    for (const c of children.flat(Infinity)) {
      if (c === undefined || c === null || c === false) continue;
      e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return e;
  }

  // put replaces node's children, leaving out the empty ones.
  function put(node, ...children) {
    node.replaceChildren(...children.filter(c => c !== undefined && c !== null && c !== false));
  }

  function show(...nodes) {
    put(main, ...nodes);
  }

  function kv(pairs) {
    return el("dl", { class: "kv" }, pairs.filter(p => p[1] !== undefined && p[1] !== null && p[1] !== "")
      .map(([k, v]) => [el("dt", { text: k }), el("dd", {}, v instanceof Node ? v : String(v))]));
  }

  function table(headers, rows, attrs) {
    return el("table", attrs || {},
      el("thead", {}, el("tr", {}, headers.map(h => el("th", { class: h.num ? "num" : "", text: h.label || h })))),
      el("tbody", {}, rows.length ? rows : el("tr", {}, el("td", { colspan: headers.length, class: "muted", text: "None." }))));
  }

  function td(v, num) {
    return el("td", { class: num ? "num" : "" }, v instanceof Node ? v : String(v ?? ""));
  }

  function bytes(n) {
    if (n === undefined || n === null) return "";
    if (n < 1024) return n + " B";
    if (n < 1 << 20) return (n / 1024).toFixed(1) + " KiB";
    return (n / (1 << 20)).toFixed(1) + " MiB";
  }

  function fnLink(name, sub) {
    return el("a", { href: "#/functions/" + encodeURIComponent(name) + (sub ? "/" + sub : ""), text: name });
  }

  function errorBox(err) {
    return el("p", { class: "error" }, (err.code ? err.code + ": " : "") + err.message);
  }

  // Polling that stops when the page changes.
  function every(ms, f) {
    let stopped = false;
    const tick = async () => {
      if (stopped) return;
      try { await f(); } catch (e) { /* the page shows its own errors */ }
      if (!stopped) state.timers.push(setTimeout(tick, ms));
    };
    state.timers.push({ stop: () => { stopped = true; } });
    tick();
  }

  function stopPage() {
    for (const t of state.timers) {
      if (t && t.stop) t.stop(); else clearTimeout(t);
    }
    state.timers = [];
    for (const c of state.charts) c.destroy();
    state.charts = [];
  }

  // --- API calls ---------------------------------------------------------

  class APIError extends Error {
    constructor(status, code, message, extra) {
      super(message || ("HTTP " + status));
      this.status = status;
      this.code = code;
      this.extra = extra || {};
    }
  }

  const signedOutCodes = ["UnrecognizedClientException", "ExpiredTokenException", "MissingAuthenticationTokenException"];

  // api calls icebox's own API with the session cookie and CSRF header.
  async function api(method, path, opts) {
    opts = opts || {};
    const headers = Object.assign({}, opts.headers);
    if (state.session && state.session.csrf) headers[CSRF_HEADER] = state.session.csrf;
    const resp = await fetch(path, { method, headers, body: opts.body, credentials: "same-origin", cache: "no-store" });
    const text = await resp.text();
    if (!resp.ok) {
      let body = {};
      try { body = JSON.parse(text); } catch (e) { /* not JSON */ }
      let code = resp.headers.get("x-amzn-ErrorType") || body.__type || "";
      code = code.split(":")[0].split("#").pop();
      const err = new APIError(resp.status, code, body.message || body.Message || text.trim(), body);
      if (signedOutCodes.includes(code) && !(state.session && state.session.noAuth)) {
        state.session = null;
        location.hash = "#/sign-in";
      }
      throw err;
    }
    if (opts.raw) return { resp, text };
    return text ? JSON.parse(text) : {};
  }

  function logsCall(op, body) {
    return api("POST", "/", {
      headers: { "X-Amz-Target": "Logs_20140328." + op, "Content-Type": "application/x-amz-json-1.1" },
      body: JSON.stringify(body),
    });
  }

  const fnPath = name => "/2015-03-31/functions/" + encodeURIComponent(name);

  // --- Sign-in: SigV4 with WebCrypto; the secret never leaves the page ----

  function hex(buf) {
    return Array.from(new Uint8Array(buf), b => b.toString(16).padStart(2, "0")).join("");
  }

  async function sha256hex(s) {
    return hex(await crypto.subtle.digest("SHA-256", enc.encode(s)));
  }

  async function hmac(key, msg) {
    const k = await crypto.subtle.importKey("raw", key, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
    return new Uint8Array(await crypto.subtle.sign("HMAC", k, enc.encode(msg)));
  }

  // signIn sends a sign-in request signed with SigV4 (host and x-amz-date
  // signed, a random body so that no two sign-ins share a signature).
  async function signIn(accessKeyId, secret, region) {
    const path = "/console/api/sign-in";
    const nonce = new Uint8Array(16);
    crypto.getRandomValues(nonce);
    const body = JSON.stringify({ nonce: hex(nonce) });
    const amzDate = new Date().toISOString().replace(/[-:]/g, "").replace(/\.\d{3}/, "");
    const day = amzDate.slice(0, 8);
    const scope = day + "/" + region + "/lambda/aws4_request";
    const canonical = ["POST", path, "", "host:" + location.host + "\nx-amz-date:" + amzDate + "\n", "host;x-amz-date", await sha256hex(body)].join("\n");
    const toSign = ["AWS4-HMAC-SHA256", amzDate, scope, await sha256hex(canonical)].join("\n");
    let key = await hmac(enc.encode("AWS4" + secret), day);
    for (const part of [region, "lambda", "aws4_request"]) key = await hmac(key, part);
    const signature = hex(await hmac(key, toSign));
    const resp = await fetch(path, {
      method: "POST", credentials: "same-origin", body,
      headers: {
        "Authorization": "AWS4-HMAC-SHA256 Credential=" + accessKeyId + "/" + scope + ", SignedHeaders=host;x-amz-date, Signature=" + signature,
        "X-Amz-Date": amzDate, "Content-Type": "application/json",
      },
    });
    const out = await resp.json().catch(() => ({}));
    if (!resp.ok) throw new APIError(resp.status, resp.headers.get("x-amzn-ErrorType") || "", out.message || out.Message);
    return out;
  }

  function signInPage() {
    const region = state.session ? state.session.region : "us-east-1";
    const id = el("input", { type: "text", id: "access-key-id", autocomplete: "username", spellcheck: "false", required: true });
    const secret = el("input", { type: "password", id: "secret-access-key", autocomplete: "current-password", required: true });
    const msg = el("p", { id: "sign-in-error", class: "error" });
    const button = el("button", { type: "submit", id: "sign-in" }, "Sign in");
    const form = el("form", { class: "signin card", id: "sign-in-form" },
      el("label", {}, "Access key ID", id),
      el("label", {}, "Secret access key", secret),
      el("p", { class: "muted" }, "The secret stays in this page: it signs the sign-in request (SigV4, region " + region + ") and is then forgotten. The session lasts an hour."),
      el("div", {}, button), msg);
    form.addEventListener("submit", async ev => {
      ev.preventDefault();
      msg.textContent = "";
      if (!window.crypto || !crypto.subtle) {
        msg.textContent = "This browser offers WebCrypto only on https or on localhost: open the console at http://127.0.0.1:PORT/console/ or put icebox behind TLS.";
        return;
      }
      button.disabled = true;
      try {
        state.session = await signIn(id.value.trim(), secret.value, region);
        secret.value = "";
        location.hash = "#/functions";
      } catch (e) {
        msg.textContent = (e.code ? e.code + ": " : "") + e.message;
      } finally {
        button.disabled = false;
      }
    });
    show(el("h1", {}, "Sign in to icebox"), form);
    id.focus();
  }

  async function signOut() {
    await fetch("/console/api/sign-out", { method: "POST", credentials: "same-origin", headers: { [CSRF_HEADER]: state.session ? state.session.csrf : "" } });
    state.session = null;
    location.hash = "#/sign-in";
  }

  // --- Functions ---------------------------------------------------------

  async function functionsPage() {
    show(el("h1", {}, "Functions"), el("p", { class: "muted" }, "Loading…"));
    const fns = [];
    try {
      let marker = "";
      do {
        const page = await api("GET", "/2015-03-31/functions?MaxItems=50" + (marker ? "&Marker=" + encodeURIComponent(marker) : ""));
        fns.push(...(page.Functions || []));
        marker = page.NextMarker || "";
      } while (marker);
    } catch (e) {
      show(el("h1", {}, "Functions"), errorBox(e));
      return;
    }
    fns.sort((a, b) => a.FunctionName.localeCompare(b.FunctionName));
    show(el("h1", {}, "Functions"),
      table(["Name", "Runtime", "Handler", { label: "Memory (MB)", num: 1 }, { label: "Timeout (s)", num: 1 }, { label: "Code size", num: 1 }, "Last modified"],
        fns.map(f => el("tr", { "data-function": f.FunctionName },
          td(fnLink(f.FunctionName)), td(f.Runtime), td(f.Handler), td(f.MemorySize, 1), td(f.Timeout, 1), td(bytes(f.CodeSize), 1), td(f.LastModified))),
        { id: "functions" }));
  }

  function tabs(name, active) {
    const t = [["", "Configuration"], ["invoke", "Invoke"], ["logs", "Logs"]];
    return el("div", { class: "tabs" }, t.map(([sub, label]) =>
      el("a", { href: "#/functions/" + encodeURIComponent(name) + (sub ? "/" + sub : ""), class: sub === active ? "active" : "", text: label })));
  }

  // optional runs a read the caller may not be allowed, showing why not.
  async function optional(f) {
    try { return await f(); } catch (e) { return e; }
  }

  async function functionPage(name) {
    show(el("h1", {}, name), tabs(name, ""), el("p", { class: "muted" }, "Loading…"));
    let fn;
    try {
      fn = await api("GET", fnPath(name));
    } catch (e) {
      show(el("h1", {}, name), tabs(name, ""), errorBox(e));
      return;
    }
    const c = fn.Configuration || {};
    const [versions, aliases] = await Promise.all([
      optional(() => api("GET", fnPath(name) + "/versions")),
      optional(() => api("GET", fnPath(name) + "/aliases")),
    ]);
    const env = (c.Environment && c.Environment.Variables) || {};
    const reserved = fn.Concurrency && fn.Concurrency.ReservedConcurrentExecutions;
    const sections = [
      el("div", { class: "card", id: "configuration" }, kv([
        ["ARN", c.FunctionArn], ["Runtime", c.Runtime], ["Handler", c.Handler], ["Role", c.Role],
        ["Description", c.Description], ["Memory", c.MemorySize + " MB"], ["Timeout", c.Timeout + " s"],
        ["Ephemeral storage", c.EphemeralStorage ? c.EphemeralStorage.Size + " MB" : ""],
        ["Architectures", (c.Architectures || []).join(", ")], ["State", c.State],
        ["Reserved concurrency", reserved === undefined ? "none (uses the unreserved pool)" : reserved],
        ["Code size", bytes(c.CodeSize) + " (" + c.CodeSize + " bytes)"],
        ["Code", fn.Code && /^https?:\/\//.test(fn.Code.Location || "") ? el("a", { href: fn.Code.Location, download: name + ".zip", id: "code-download", text: "download the zip" }) : ""],
        ["Code SHA-256", el("span", { class: "mono", id: "code-sha", text: c.CodeSha256 || "" })],
        ["Last modified", c.LastModified], ["Revision", c.RevisionId],
      ])),
      el("h2", {}, "Environment variables"),
      table(["Name", "Value"], Object.keys(env).sort().map(k => el("tr", {}, td(k), td(el("span", { class: "mono", text: env[k] }))))),
      el("h2", {}, "Versions"),
      versions instanceof Error ? errorBox(versions) :
        table(["Version", "Code SHA-256", "Description", "Last modified"], (versions.Versions || []).map(v =>
          el("tr", {}, td(v.Version), td(el("span", { class: "mono", text: v.CodeSha256 || "" })), td(v.Description), td(v.LastModified))), { id: "versions" }),
      el("h2", {}, "Aliases"),
      aliases instanceof Error ? errorBox(aliases) :
        table(["Alias", "Version", "Description"], (aliases.Aliases || []).map(a =>
          el("tr", {}, td(a.Name), td(a.FunctionVersion + (a.RoutingConfig && a.RoutingConfig.AdditionalVersionWeights ?
            " (+ " + Object.entries(a.RoutingConfig.AdditionalVersionWeights).map(([v, w]) => v + ": " + Math.round(w * 100) + "%").join(", ") + ")" : "")), td(a.Description))), { id: "aliases" }),
    ];
    show(el("h1", {}, name), tabs(name, ""), ...sections);
  }

  // --- Invoke ------------------------------------------------------------

  // report reads Lambda's REPORT line into its fields.
  function report(log) {
    const line = log.split("\n").find(l => l.startsWith("REPORT ")) || "";
    const out = {};
    for (const part of line.split("\t")) {
      const m = part.match(/^(Duration|Billed Duration|Memory Size|Max Memory Used|Init Duration): (.*)$/);
      if (m) out[m[1]] = m[2];
    }
    return out;
  }

  function decodeBase64(s) {
    const bin = atob(s);
    return new TextDecoder().decode(Uint8Array.from(bin, ch => ch.charCodeAt(0)));
  }

  function invokePage(name) {
    const qualifier = el("input", { type: "text", id: "qualifier", placeholder: "$LATEST", spellcheck: "false" });
    const payload = el("textarea", { id: "payload", spellcheck: "false" });
    payload.value = sessionStorage.getItem("payload:" + name) || "{}";
    const result = el("div", { id: "result" });
    const button = el("button", { type: "button", id: "invoke" }, "Invoke");
    button.addEventListener("click", async () => {
      sessionStorage.setItem("payload:" + name, payload.value);
      button.disabled = true;
      put(result, el("p", { class: "muted" }, "Invoking…"));
      try {
        const { resp, text } = await api("POST", fnPath(name) + "/invocations" + (qualifier.value.trim() ? "?Qualifier=" + encodeURIComponent(qualifier.value.trim()) : ""), { headers: { "X-Amz-Log-Type": "Tail" }, body: payload.value, raw: true });
        const fnError = resp.headers.get("X-Amz-Function-Error");
        const tail = resp.headers.get("X-Amz-Log-Result");
        const log = tail ? decodeBase64(tail) : "";
        const r = report(log);
        put(result,
          el("div", { class: "stats" },
            stat("Status", resp.status + (fnError ? " · function error" : ""), "status"),
            stat("Version", resp.headers.get("X-Amz-Executed-Version"), "version"),
            stat("Duration", r["Duration"], "duration"),
            stat("Billed duration", r["Billed Duration"], "billed"),
            stat("Memory used", (r["Max Memory Used"] || "") + (r["Memory Size"] ? " of " + r["Memory Size"] : ""), "memory"),
            stat("Init duration", r["Init Duration"] || "warm start", "init"),
          ),
          fnError ? el("p", { class: "error", id: "function-error" }, "Function error: " + fnError) : null,
          el("h2", {}, "Response"), el("pre", { id: "response", text: pretty(text) }),
          el("h2", {}, "Log (tail)"), el("pre", { id: "tail", text: log }));
      } catch (e) {
        put(result, el("div", { id: "invoke-error" }, errorBox(e),
          e.extra && e.extra.Reason ? el("p", { class: "muted" }, "Reason: " + e.extra.Reason) : null));
      } finally {
        button.disabled = false;
      }
    });
    show(el("h1", {}, name), tabs(name, "invoke"),
      el("div", { class: "card" },
        el("div", { class: "row" }, el("label", { for: "qualifier" }, "Version or alias"), qualifier),
        el("label", { for: "payload" }, "Payload (JSON)"), payload, el("div", { class: "row" }, button)),
      result);
  }

  function stat(k, v, id) {
    return el("div", { class: "stat", id: id ? "stat-" + id : null }, el("div", { class: "v", text: v === undefined || v === "" ? "–" : v }), el("div", { class: "k", text: k }));
  }

  function pretty(text) {
    try { return JSON.stringify(JSON.parse(text), null, 2); } catch (e) { return text; }
  }

  // --- Logs: live tail with a filter pattern -------------------------------

  function logsPage(name) {
    const filter = el("input", { type: "text", id: "filter", placeholder: "Filter pattern, e.g. ERROR or \"timed out\" or { $.level = \"error\" }", spellcheck: "false" });
    const status = el("span", { class: "muted", id: "tail-status" });
    const box = el("div", { class: "log", id: "log" });
    const group = "/aws/lambda/" + name;
    // Each poll asks for the events from the newest one's time on; seen
    // holds the ids of the events at that time, shown already.
    let since = Date.now() - 15 * 60 * 1000;
    let seen = new Map();
    let pattern = "";
    const restart = () => {
      pattern = filter.value.trim();
      since = Date.now() - 15 * 60 * 1000;
      seen = new Map();
      put(box);
    };
    filter.addEventListener("change", restart);
    show(el("h1", {}, name), tabs(name, "logs"),
      el("div", { class: "row" }, filter, el("button", { type: "button", class: "secondary", onclick: restart }, "Apply"), status), box);
    every(1000, async () => {
      const req = { logGroupName: group, startTime: since, limit: 1000 };
      if (pattern) req.filterPattern = pattern;
      let out;
      try {
        out = await logsCall("FilterLogEvents", req);
      } catch (e) {
        status.textContent = e.code === "ResourceNotFoundException" ? "No log yet: invoke the function." : (e.code ? e.code + ": " : "") + e.message;
        status.className = e.code === "ResourceNotFoundException" ? "muted" : "error";
        return;
      }
      status.className = "muted";
      status.textContent = "Live · " + new Date().toLocaleTimeString();
      const stick = box.scrollTop + box.clientHeight >= box.scrollHeight - 4;
      for (const ev of out.events || []) {
        if (seen.has(ev.eventId)) continue;
        seen.set(ev.eventId, ev.timestamp);
        since = Math.max(since, ev.timestamp);
        box.append(el("div", { class: "line" }, el("span", { class: "ts", text: new Date(ev.timestamp).toISOString().slice(11, 23) }), ev.message.replace(/\n$/, "")));
      }
      for (const [id, ts] of seen) if (ts < since) seen.delete(id);
      while (box.childElementCount > 2000) box.firstElementChild.remove();
      if (stick) box.scrollTop = box.scrollHeight;
    });
  }

  // --- Environments, concurrency, throttles and charts -------------------

  // parseMetrics reads the Prometheus text format into per-function values
  // of the metrics the page shows.
  function parseMetrics(text) {
    const out = {};
    for (const line of text.split("\n")) {
      const m = line.match(/^(icebox_[a-z_]+)\{([^}]*)\} (\S+)$/);
      if (!m) continue;
      const fn = (m[2].match(/(?:^|,)function="([^"]*)"/) || [])[1];
      if (fn === undefined || /(?:^|,)le="/.test(m[2])) continue;
      (out[fn] = out[fn] || {})[m[1]] = Number(m[3]);
    }
    return out;
  }

  const chartWindow = 90; // samples kept: three minutes at one per two seconds

  function environmentsPage() {
    const summary = el("div", { class: "stats", id: "account" });
    const perFn = el("div", { id: "per-function" });
    const envs = el("div", { id: "environment-list" });
    const errorsChart = el("div", { id: "errors-chart" });
    const durationChart = el("div", { id: "duration-chart" });
    const note = el("p", { class: "muted", id: "metrics-note" });
    show(el("h1", {}, "Environments"), summary,
      el("h2", {}, "Functions"), perFn,
      el("h2", {}, "Execution environments"), envs,
      el("h2", {}, "Errors and duration"), note,
      el("div", { class: "charts" }, el("div", { class: "card" }, errorsChart), el("div", { class: "card" }, durationChart)));

    const samples = { t: [], byFn: {} }; // per function: arrays of errors and mean duration (ms) per interval
    let last = null;
    let plotted = "";
    const reserved = {};
    let names = [];
    let round = 0;

    every(2000, async () => {
      const [status, account, metricsText, list] = await Promise.all([
        optional(() => api("GET", "/icebox/v1/status")),
        optional(() => api("GET", "/2016-08-19/account-settings")),
        optional(() => api("GET", "/metrics", { raw: true })),
        round % 5 === 0 ? optional(() => api("GET", "/2015-03-31/functions?MaxItems=50")) : null,
      ]);
      if (list && !(list instanceof Error)) {
        names = (list.Functions || []).map(f => f.FunctionName);
        await Promise.all(names.map(async n => {
          const c = await optional(() => api("GET", "/2019-09-30/functions/" + encodeURIComponent(n) + "/concurrency"));
          reserved[n] = c instanceof Error ? undefined : c.ReservedConcurrentExecutions;
        }));
      }
      round++;
      // The functions this key may see: those it may list, and those the
      // status page (icebox:GetStatus) shows. Metrics of others are left out.
      const st = status instanceof Error ? { functions: [] } : status;
      const byName = {};
      for (const f of st.functions || []) byName[f.name] = f;
      const all = [...new Set([...names, ...Object.keys(byName)])].sort();
      const metrics = {};
      if (!(metricsText instanceof Error)) {
        const parsed = parseMetrics(metricsText.text);
        for (const n of all) if (parsed[n]) metrics[n] = parsed[n];
      }

      // Account-wide concurrency.
      const limit = account instanceof Error ? undefined : account.AccountLimit;
      put(summary,
        stat("Concurrent executions", status instanceof Error ? "?" : status.concurrentExecutions + (limit ? " of " + limit.ConcurrentExecutions : ""), "concurrent"),
        stat("Unreserved in use", status instanceof Error ? "?" : status.unreservedConcurrentExecutions + (limit ? " of " + limit.UnreservedConcurrentExecutions : ""), "unreserved"),
        stat("Environments", status instanceof Error || !status.environments ? "?" : Object.values(status.environments).reduce((a, b) => a + b, 0), "environments"),
        stat("Throttles", Object.values(metrics).reduce((a, m) => a + (m.icebox_throttles_total || 0), 0), "throttles"));

      // Per function: environments by state, concurrency against reserved, throttles, queue.
      put(perFn, status instanceof Error ? errorBox(status) : null,
        table(["Function", "Environments", { label: "Busy / reserved", num: 1 }, { label: "Invocations", num: 1 }, { label: "Errors", num: 1 }, { label: "Throttles", num: 1 }, { label: "Queued async", num: 1 }],
          all.map(n => {
            const f = byName[n] || { environments: [], queuedEvents: 0 };
            const m = metrics[n] || {};
            const counts = {};
            for (const e of f.environments) counts[e.state] = (counts[e.state] || 0) + 1;
            const busy = f.environments.filter(e => e.state === "busy").length;
            return el("tr", { "data-function": n },
              td(fnLink(n)),
              td(el("span", {}, Object.keys(counts).sort().map(s => el("span", { class: "badge " + s, text: counts[s] + " " + s })))),
              td(busy + " / " + (reserved[n] === undefined ? "–" : reserved[n]), 1),
              td(m.icebox_invocations_total || 0, 1),
              el("td", { class: "num errors", text: String(m.icebox_errors_total || 0) }),
              el("td", { class: "num throttles", text: String(m.icebox_throttles_total || 0) }),
              td(f.queuedEvents || 0, 1));
          }), { id: "functions-status" }));

      put(envs, table(["Function", "Environment", "State", { label: "Age (s)", num: 1 }, { label: "Calls", num: 1 }, { label: "Max memory used", num: 1 }],
        (st.functions || []).flatMap(f => f.environments.map(e => el("tr", {},
          td(f.name), td(el("span", { class: "mono", text: e.id })), td(el("span", { class: "badge " + e.state, text: e.state })),
          td(Math.round(e.ageSeconds), 1), td(e.calls, 1), td(e.maxMemoryUsedMB + " of " + e.memorySizeMB + " MB", 1))))));

      // Charts: per interval, each function's errors and mean duration.
      if (metricsText instanceof Error) {
        note.textContent = "Metrics: " + (metricsText.code ? metricsText.code + ": " : "") + metricsText.message;
        return;
      }
      note.textContent = "Sampled every 2 s from /metrics while this page is open.";
      const now = Date.now() / 1000;
      if (last) {
        samples.t.push(now);
        for (const n of Object.keys(metrics)) {
          const s = samples.byFn[n] = samples.byFn[n] || { errors: samples.t.slice(0, -1).map(() => null), duration: samples.t.slice(0, -1).map(() => null) };
          const a = metrics[n], b = last[n] || {};
          const calls = (a.icebox_duration_seconds_count || 0) - (b.icebox_duration_seconds_count || 0);
          s.errors.push((a.icebox_errors_total || 0) - (b.icebox_errors_total || 0));
          s.duration.push(calls > 0 ? 1000 * ((a.icebox_duration_seconds_sum || 0) - (b.icebox_duration_seconds_sum || 0)) / calls : null);
        }
        for (const n of Object.keys(samples.byFn)) {
          const s = samples.byFn[n];
          while (s.errors.length < samples.t.length) { s.errors.push(null); s.duration.push(null); }
        }
        if (samples.t.length > chartWindow) {
          samples.t.shift();
          for (const s of Object.values(samples.byFn)) { s.errors.shift(); s.duration.shift(); }
        }
      }
      last = metrics;
      const fns = Object.keys(samples.byFn).sort();
      if (typeof uPlot === "undefined" || samples.t.length < 2) return;
      const key = fns.join("\n");
      if (key !== plotted) {
        for (const c of state.charts) c.destroy();
        state.charts = [
          makeChart(errorsChart, "Errors per 2 s", fns, "errors"),
          makeChart(durationChart, "Mean duration (ms)", fns, "duration"),
        ];
        plotted = key;
      }
      state.charts[0].setData([samples.t, ...fns.map(n => samples.byFn[n].errors)]);
      state.charts[1].setData([samples.t, ...fns.map(n => samples.byFn[n].duration)]);
    });
  }

  const palette = ["#1f6feb", "#c62828", "#1a7f37", "#b26a00", "#8250df", "#0a7ea4", "#bf3989", "#57606a"];

  function makeChart(target, title, fns, field) {
    put(target);
    const width = Math.max(320, target.clientWidth || 520);
    return new uPlot({
      title, width, height: 220,
      series: [{}, ...fns.map((n, i) => ({ label: n, stroke: palette[i % palette.length], width: 2, spanGaps: true, points: { show: true, size: 5 } }))],
      axes: [{}, { size: 50 }],
      scales: { x: { time: true }, y: { range: (u, min, max) => [0, Math.max(1, max * 1.1)] } },
    }, [[], ...fns.map(() => [])], target);
  }

  // --- Routing -----------------------------------------------------------

  async function route() {
    stopPage();
    const hash = location.hash || "#/functions";
    const parts = hash.slice(2).split("/").map(decodeURIComponent);
    if (!state.session) {
      state.session = await fetch("/console/api/session", { credentials: "same-origin", cache: "no-store" }).then(r => r.json()).catch(() => null);
    }
    const signedIn = state.session && state.session.signedIn;
    document.getElementById("nav").hidden = !signedIn;
    document.getElementById("sign-out").hidden = !signedIn || state.session.noAuth;
    const who = document.getElementById("who");
    who.textContent = signedIn ? (state.session.noAuth ? "authentication off" : state.session.user) : "";
    who.title = signedIn && state.session.expires ? "Session ends at " + new Date(state.session.expires).toLocaleTimeString() : "";
    for (const a of document.querySelectorAll("#nav a")) a.classList.toggle("active", a.dataset.page === parts[0]);
    if (!signedIn) {
      if (parts[0] !== "sign-in") { location.hash = "#/sign-in"; return; }
      signInPage();
      return;
    }
    switch (parts[0]) {
      case "sign-in":
        location.hash = "#/functions";
        return;
      case "environments":
        return environmentsPage();
      case "functions":
        if (!parts[1]) return functionsPage();
        if (parts[2] === "invoke") return invokePage(parts[1]);
        if (parts[2] === "logs") return logsPage(parts[1]);
        return functionPage(parts[1]);
      default:
        location.hash = "#/functions";
    }
  }

  document.getElementById("sign-out").addEventListener("click", signOut);
  window.addEventListener("hashchange", route);
  route();
})();

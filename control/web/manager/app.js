/* vosmedia Web Manager: one page, hash-routed, plain JavaScript (no build step).
 *
 * Rules kept throughout:
 *  - every text from the API goes into the DOM through textContent (el()/text()),
 *    never through innerHTML;
 *  - money stays the API's decimal string: shown as is, sent as a string, never parsed;
 *  - the token lives in sessionStorage and is sent as "Authorization: Bearer <token>".
 */
"use strict";

(function () {
  const API = "/api";
  const STORE_KEY = "vosmedia.manager.session";
  const PAGES = ["dashboard", "calls", "cdrs", "customers", "vendors", "phones", "payments", "rates",
                 "revenue", "alarms", "system", "settings"];
  // termination reasons (control/reasons.py), offered as suggestions in the CDR filter
  const REASONS = ["Normal", "NoAvailableRouter", "AllGatewayBusy", "Not Found", "Response Timeout",
    "Connection Timeout", "Account Locked", "Account Expired", "Unregistered", "Connection Limit",
    "Rate Limit", "Called Not Online", "Insufficient Balance", "Rate Not Found", "Codec Mismatch",
    "Auth Failed", "IP Blocked", "User Busy", "Cancelled", "RTP Timeout", "Number Restricted",
    "Gateway Locked", "Gateway Expired", "Session Timeout", "Max Duration", "No ACK", "No PRACK",
    "Media Unavailable", "Bad Answer", "Callee Rejected", "Switch Shutdown"];

  // ================================================================ DOM helpers

  const $ = (selector, root) => (root || document).querySelector(selector);
  const $$ = (selector, root) => Array.from((root || document).querySelectorAll(selector));

  /** A new element. attrs: plain attributes, plus "text" (textContent), "class" and
   *  "on<event>" handlers. Children: nodes or strings (added as text nodes). */
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (key === "text") node.textContent = String(value);
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children) {
      if (child !== undefined && child !== null) node.append(child);
    }
    return node;
  }

  /** Set an element's text (found by selector or given). */
  function text(target, value) {
    const node = typeof target === "string" ? $(target) : target;
    if (node) node.textContent = value === undefined || value === null ? "" : String(value);
  }

  /** Replace a table body's rows. toCells(row) gives strings, nodes or {text, class}
   *  cells; rowAttrs(row) gives attributes for the <tr>. */
  function fillTable(table, rows, toCells, rowAttrs, emptyText) {
    const body = $(`${table} tbody`);
    const columns = $$(`${table} thead tr:last-child th`).length +
      $$(`${table} thead tr:first-child th[rowspan]`).length;
    if (!rows.length) {
      body.replaceChildren(el("tr", { class: "empty" },
        el("td", { colspan: columns || 1, text: emptyText || "Nothing to show" })));
      return;
    }
    body.replaceChildren(...rows.map((row) => el("tr", rowAttrs ? rowAttrs(row) : {},
      ...toCells(row).map(cell))));
  }

  /** A cell: a node, a string, or {text | node, class, other attributes}. */
  function cell(value) {
    if (value instanceof Node) return el("td", {}, value);
    if (value && typeof value === "object") {
      const { text: content, node, ...attrs } = value;
      return el("td", attrs, node instanceof Node ? node : show(content));
    }
    return el("td", { text: show(value) });
  }

  const num = (value) => ({ text: value, class: "num" });        // right-aligned figure
  const show = (value) => (value === undefined || value === null || value === "" ? "–" : String(value));

  /** Trimmed string values of a form's named fields. */
  function formValues(form) {
    const values = {};
    for (const [key, value] of new FormData(form).entries()) {
      if (typeof value === "string") values[key] = value.trim();
    }
    return values;
  }

  /** Fill every <select data-rate-tables> (keeping its choice) with the rate table names. */
  function fillRateTableSelects(tables, root) {
    for (const select of $$("select[data-rate-tables]", root)) {
      const chosen = select.value;
      const none = select.required ? [] : [el("option", { value: "", text: "(none)" })];
      select.replaceChildren(...none, ...tables.map((t) => el("option", { value: t.name, text: t.name })));
      if (tables.some((t) => t.name === chosen)) select.value = chosen;
    }
  }

  // ================================================================ formatting (never money)

  const pad = (n) => String(n).padStart(2, "0");

  /** Unix seconds as local "YYYY-MM-DD HH:MM:SS". */
  function fmtTime(unix) {
    if (unix === undefined || unix === null || unix === "") return "";
    const d = new Date(Number(unix) * 1000);
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
      `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  }

  /** Seconds as m:ss or h:mm:ss. */
  function fmtDuration(seconds) {
    const s = Math.max(0, Math.floor(Number(seconds) || 0));
    const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
    return h ? `${h}:${pad(m)}:${pad(s % 60)}` : `${m}:${pad(s % 60)}`;
  }

  /** A measured figure (not money) with at most `digits` decimals, the same in every
   *  locale ("2.5", "12", "0.33"). */
  function fmtNum(value, digits) {
    if (value === undefined || value === null || value === "") return "";
    const n = Number(value);
    if (!Number.isFinite(n)) return String(value);
    return String(Number(n.toFixed(digits === undefined ? 1 : digits)));
  }

  function fmtBytes(value, perSecond) {
    let n = Number(value);
    if (!Number.isFinite(n)) return show(value);
    const units = ["B", "KB", "MB", "GB", "TB"];
    let i = 0;
    while (Math.abs(n) >= 1024 && i < units.length - 1) { n /= 1024; i += 1; }
    return `${fmtNum(n, 1)} ${units[i]}${perSecond ? "/s" : ""}`;
  }

  /** A datetime-local value as unix seconds (local time), or "" when empty. */
  function toUnix(local) {
    if (!local) return "";
    const ms = new Date(local).getTime();
    return Number.isFinite(ms) ? String(Math.floor(ms / 1000)) : "";
  }

  // ================================================================ messages

  /** Show a line in #message: kind "error", "ok" or "info"; empty text hides it. */
  function say(message, kind) {
    const box = $("#message");
    box.textContent = message || "";
    box.dataset.kind = kind || "info";
    box.hidden = !message;
  }

  const errorText = (err) => (err && err.field ? `${err.field}: ${err.rule}` : (err && (err.rule || err.message)) || String(err));

  /** Show an error, unless it ended the session (the login page already says so). */
  function sayError(err) {
    if (err && err.sessionEnded) return;
    say(errorText(err), "error");
  }

  // ================================================================ session

  const session = {
    get() {
      try { return JSON.parse(sessionStorage.getItem(STORE_KEY)) || null; } catch (e) { return null; }
    },
    token() { const s = session.get(); return s ? s.token : ""; },
    set(value) { sessionStorage.setItem(STORE_KEY, JSON.stringify(value)); },
    clear() { sessionStorage.removeItem(STORE_KEY); },
  };

  // ================================================================ the API

  class ApiError extends Error {
    constructor(status, field, rule) {
      super(`${field}: ${rule}`);
      this.status = status;
      this.field = field;
      this.rule = rule;
    }
  }

  function authHeaders() {
    const token = session.token();
    return token ? { Authorization: `Bearer ${token}` } : {};
  }

  /** The error an answer carries: {"error": {"field", "rule"}} or the HTTP status. */
  async function readError(res) {
    try {
      const body = await res.json();
      if (body && body.error) return new ApiError(res.status, body.error.field || "", body.error.rule || "");
    } catch (e) { /* not JSON */ }
    return new ApiError(res.status, "http", `${res.status} ${res.statusText}`.trim());
  }

  /** Call the API. options: body (sent as JSON) or csv (sent as text/csv).
   *  Returns parsed JSON, text (CSV) or null (204); throws ApiError. */
  async function api(method, path, options) {
    const opts = options || {};
    const headers = authHeaders();
    let payload;
    if (opts.csv !== undefined) {
      headers["Content-Type"] = "text/csv";
      payload = opts.csv;
    } else if (opts.body !== undefined) {
      headers["Content-Type"] = "application/json";
      payload = JSON.stringify(opts.body);
    }
    let res;
    try {
      res = await fetch(API + path, { method, headers, body: payload, cache: "no-store" });
    } catch (e) {
      throw new ApiError(0, "network", "the switch did not answer");
    }
    if (!res.ok) {
      const err = await readError(res);
      if (res.status === 401 && path !== "/login") sessionEnded(err);
      throw err;
    }
    if (res.status === 204) return null;
    const type = res.headers.get("content-type") || "";
    return type.includes("json") ? res.json() : res.text();
  }

  const get = (path) => api("GET", path);

  /** A query string from the non-empty values. */
  function query(params) {
    const q = new URLSearchParams();
    for (const [key, value] of Object.entries(params)) {
      if (value !== undefined && value !== null && value !== "") q.set(key, value);
    }
    const s = q.toString();
    return s ? `?${s}` : "";
  }

  /** Fetch a file with the token and hand it to the browser as a download. */
  async function download(path, filename) {
    let res;
    try {
      res = await fetch(API + path, { headers: authHeaders(), cache: "no-store" });
    } catch (e) {
      throw new ApiError(0, "network", "the switch did not answer");
    }
    if (!res.ok) {
      const err = await readError(res);
      if (res.status === 401) sessionEnded(err);
      throw err;
    }
    const url = URL.createObjectURL(await res.blob());
    const link = el("a", { href: url, download: filename, hidden: true });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  }

  /** Make a link download its href with the token (the href itself carries the filters). */
  function tokenDownloadLink(link, filename) {
    link.addEventListener("click", async (event) => {
      event.preventDefault();
      const path = link.getAttribute("href").replace(/^\/api/, "");
      try {
        await download(path, filename());
      } catch (err) {
        sayError(err);
      }
    });
  }

  /** Parse an optional whole number from a form field; "" gives undefined. */
  function optionalInt(values, field) {
    const raw = values[field];
    if (raw === undefined || raw === "") return undefined;
    if (!/^-?\d+$/.test(raw)) throw new ApiError(0, field, "must be a whole number");
    return Number(raw);
  }

  /** "a, b ,c" as ["a", "b", "c"]. */
  const splitList = (raw) => (raw || "").split(",").map((s) => s.trim()).filter(Boolean);

  /** Copy the defined entries of `fields` into a request body. */
  function compact(fields) {
    const body = {};
    for (const [key, value] of Object.entries(fields)) {
      if (value !== undefined && value !== "") body[key] = value;
    }
    return body;
  }

  /** Run a form's submit handler with its button disabled; errors go to #message. */
  function onSubmit(form, handler) {
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const buttons = $$("button[type=submit]", form);
      buttons.forEach((b) => { b.disabled = true; });
      try {
        await handler(formValues(form), form);
      } catch (err) {
        sayError(err);
      } finally {
        buttons.forEach((b) => { b.disabled = false; });
      }
    });
  }

  // ================================================================ page life cycle

  // The open page's stoppers (timers, event streams), run when it is left.
  let stoppers = [];

  function stopPage() {
    stoppers.forEach((stop) => stop());
    stoppers = [];
  }

  /** Call fn now and then every `ms` after each run ends, until the page is left. */
  function every(ms, fn) {
    let stopped = false;
    let timer = null;
    const tick = async () => {
      if (stopped) return;
      try {
        await fn();
      } catch (err) {
        if (!stopped) sayError(err);
      }
      if (!stopped) timer = setTimeout(tick, ms);
    };
    stoppers.push(() => { stopped = true; clearTimeout(timer); });
    tick();
  }

  /** Run a one-off page load, reporting its error. */
  function load(fn) {
    Promise.resolve().then(fn).catch(sayError);
  }

  // ================================================================ 1. login

  function loginPage() {
    $("#login-password").value = "";
    $("#login-name").focus();
  }

  function setupLogin() {
    onSubmit($("#login-form"), async (values) => {
      const answer = await api("POST", "/login", { body: { name: values.name, password: $("#login-password").value } });
      session.set({ token: answer.token, actor: answer.actor, id: answer.id, name: values.name });
      say("");
      const wanted = sessionStorage.getItem(`${STORE_KEY}.after`);
      sessionStorage.removeItem(`${STORE_KEY}.after`);
      go(PAGES.includes(wanted) ? wanted : "dashboard");
    });
    $("#logout").addEventListener("click", (event) => {
      event.preventDefault();
      session.clear();
      go("login");
      say("Logged out.", "ok");
    });
  }

  /** A 401 on any call: the token expired or the login was locked. */
  function sessionEnded(err) {
    err.sessionEnded = true;
    session.clear();
    go("login");
    say(`Please sign in again (${err.rule || "session ended"}).`, "error");
  }

  // ================================================================ 2. dashboard

  function showDashboard(d) {
    const tile = (name, value) => text(`[data-tile="${name}"] .tile-value`, show(value));
    const today = d.today || {};
    tile("concurrent_calls", d.concurrent_calls);
    tile("cps", fmtNum(d.cps, 1));
    tile("online_phones", d.online_phones);
    tile("online_mapping_gateways", d.online_mapping_gateways);
    tile("online_routing_gateways", d.routing_gateways === undefined
      ? d.online_routing_gateways : `${d.online_routing_gateways} / ${d.routing_gateways}`);
    tile("income", today.income);       // money: the API's decimal strings, as they are
    tile("cost", today.cost);
    tile("profit", today.profit);
    tile("alarms", d.alarms);
    $('[data-tile="alarms"]').classList.toggle("raised", Number(d.alarms) > 0);
  }

  function dashboardPage() {
    load(async () => showDashboard(await get("/dashboard")));
    if (!window.EventSource) return pollDashboard();
    const stream = new EventSource(`${API}/events${query({ token: session.token() })}`);
    let open = true;
    const close = () => { if (open) { open = false; stream.close(); } };
    stoppers.push(close);
    stream.addEventListener("dashboard", (event) => {
      try { showDashboard(JSON.parse(event.data)); } catch (err) { sayError(err); }
    });
    stream.addEventListener("open", () => text("#dashboard-mode", "live"));
    stream.addEventListener("error", () => {
      if (!open) return;
      close();            // no automatic reconnects: poll instead
      pollDashboard();
    });
    text("#dashboard-mode", "connecting…");
  }

  function pollDashboard() {
    text("#dashboard-mode", "updated every 5 s");
    every(5000, async () => showDashboard(await get("/dashboard")));
  }

  // ================================================================ 3. current calls

  function legCells(call, side) {
    const leg = (call.legs || []).find((l) => l.side === side) || {};
    return [leg.codec, leg.dtmf, num(fmtNum(leg.loss_percent, 2)), num(fmtNum(leg.jitter_ms, 1))];
  }

  function callsPage() {
    every(2000, async () => {
      const calls = await get("/current-calls");
      text("#calls-count", `${calls.length} in progress`);
      fillTable("#calls-table", calls, (c) => [
        c.caller, c.callee, c.customer, c.vendor, c.state, num(fmtDuration(c.duration_s)),
        ...legCells(c, "caller"), ...legCells(c, "callee"),
      ], (c) => ({ "data-call-id": c.call_id, "data-state": c.state }), "No calls in progress");
    });
  }

  // ================================================================ 4. CDRs

  /** The filters of the CDR form as query parameters. */
  function cdrFilters() {
    const v = formValues($("#cdrs-filter"));
    return { limit: 1000, since: toUnix(v.since), until: toUnix(v.until), caller: v.caller,
             callee: v.callee, reason: v.reason };
  }

  /** Point the export link at the CSV of the same filters (the CSV has no row limit). */
  function setExportLink(filters) {
    const { limit, ...csvFilters } = filters;
    $("#cdrs-export").setAttribute("href", `${API}/cdrs.csv${query(csvFilters)}`);
  }

  async function loadCdrs() {
    const filters = cdrFilters();
    setExportLink(filters);
    const rows = await get(`/cdrs${query(filters)}`);
    text("#cdrs-count", `${rows.length} shown (newest first, at most 1000)`);
    fillTable("#cdrs-table", rows, (r) => [
      fmtTime(r.start_time), r.caller, r.callee, r.customer, r.vendor, num(fmtNum(r.hold_time, 1)),
      r.termination_reason, num(r.sip_code), num(r.fee), num(r.cost), num(r.profit),
    ], (r) => ({ "data-call-id": r.call_id, title: r.call_id }), "No call records match");
  }

  function setupCdrs() {
    $("#reason-names").replaceChildren(...REASONS.map((r) => el("option", { value: r })));
    onSubmit($("#cdrs-filter"), async () => { say(""); await loadCdrs(); });
    // keep the export link's filters in step while the form is edited
    $("#cdrs-filter").addEventListener("input", () => setExportLink(cdrFilters()));
    tokenDownloadLink($("#cdrs-export"), () => "cdrs.csv");
  }

  function cdrsPage() {
    load(loadCdrs);
  }

  // ================================================================ accounts (customers, vendors)

  /** PATCH an account, report, and reload the page. */
  async function patchAccount(id, fields, done, reload) {
    try {
      await api("PATCH", `/accounts/${encodeURIComponent(id)}`, { body: fields });
      say(done, "ok");
    } catch (err) {
      sayError(err);
    }
    load(reload);
  }

  /** The Lock/Unlock button for an account row. */
  function lockButton(account, reload) {
    const locked = account.status === "Locked";
    return el("button", {
      type: "button", class: "secondary", "data-action": "lock",
      text: locked ? "Unlock" : "Lock",
      onclick: () => patchAccount(account.id, { status: locked ? "Active" : "Locked" },
        `${account.id} ${locked ? "unlocked" : "locked"}.`, reload),
    });
  }

  /** Several buttons in one table cell. */
  const actionCell = (...buttons) => el("span", { class: "row-actions" }, ...buttons);

  /** A select of rate tables that changes the account's default rate table. */
  function rateTableSelect(account, tables, reload) {
    const select = el("select", { "data-action": "rate-table", "aria-label": `Rate table of ${account.id}` },
      el("option", { value: "", text: "(none)" }),
      ...tables.map((t) => el("option", { value: t.name, text: t.name })));
    if (account.rate_table && !tables.some((t) => t.name === account.rate_table)) {
      select.append(el("option", { value: account.rate_table, text: account.rate_table }));
    }
    select.value = account.rate_table || "";
    select.addEventListener("change", () => patchAccount(account.id, { rate_table: select.value },
      `${account.id} now uses rate table ${select.value || "(none)"}.`, reload));
    return select;
  }

  /** Accounts of one kind, their gateways by account and the rate tables; a failing
   *  gateway or rate table list leaves those columns empty instead of failing the page. */
  async function accountsWith(kind, gatewayPath) {
    const [accounts, gateways, tables] = await Promise.allSettled(
      [get("/accounts"), get(gatewayPath), get("/rate-tables")]);
    if (accounts.status === "rejected") throw accounts.reason;
    const byAccount = {};
    for (const g of gateways.status === "fulfilled" ? gateways.value : []) {
      (byAccount[g.account_id] = byAccount[g.account_id] || []).push(g);
    }
    return {
      accounts: accounts.value.filter((a) => a.kind === kind),
      gateways: byAccount,
      tables: tables.status === "fulfilled" ? tables.value : [],
    };
  }

  /** Create an account, then its gateway; if the gateway is refused, remove the new
   *  account again so the form can be sent once more. Shows the first error. */
  async function createAccountWithGateway(account, gatewayPath, gateway) {
    await api("POST", "/accounts", { body: account });
    try {
      await api("POST", gatewayPath, { body: gateway });
    } catch (err) {
      if (err.status === 401) throw err;
      try {
        await api("DELETE", `/accounts/${encodeURIComponent(account.id)}`);
      } catch (undoErr) {
        throw new ApiError(err.status, err.field,
          `${err.rule} (account ${account.id} was created without a gateway and could not be removed: ${errorText(undoErr)})`);
      }
      throw err;
    }
  }

  // ================================================================ edit forms

  /* How an edit form shows a record's field and reads it back. "limit": empty means
   * no limit (null); "prefixes": empty means every number ([""]); "flag": a checkbox. */
  const whole = (raw, field) => {
    if (!/^-?\d+$/.test(raw)) throw new ApiError(0, field, "must be a whole number");
    return Number(raw);
  };
  const plain = (value) => (value === undefined || value === null ? "" : String(value));
  const FIELD_KINDS = {
    text: { show: plain, read: (raw) => raw },
    int: { show: plain, read: whole },
    limit: { show: plain, read: (raw, field) => (raw === "" ? null : whole(raw, field)) },
    list: { show: (v) => (v || []).join(", "), read: (raw) => splitList(raw) },
    prefixes: { show: (v) => (v || []).filter(Boolean).join(", "),
                read: (raw) => (splitList(raw).length ? splitList(raw) : [""]) },
  };

  /** Put a record's fields (spec: name -> kind) into a form's inputs. */
  function showFields(form, spec, record) {
    for (const [name, kind] of Object.entries(spec)) {
      const input = form.elements[name];
      if (kind === "flag") input.checked = Boolean(record[name]);
      else input.value = FIELD_KINDS[kind].show(record[name]);
    }
  }

  /** The fields whose input differs from the record, parsed for the API: only what the
   *  operator changed is sent (an agent may hold the right for some fields only). */
  function changedFields(form, spec, record) {
    const body = {};
    for (const [name, kind] of Object.entries(spec)) {
      const input = form.elements[name];
      if (kind === "flag") {
        if (input.checked !== Boolean(record[name])) body[name] = input.checked;
        continue;
      }
      const raw = input.value.trim();
      if (raw !== FIELD_KINDS[kind].show(record[name])) body[name] = FIELD_KINDS[kind].read(raw, name);
    }
    return body;
  }

  /** A select's options, keeping a current value that is not among them. */
  function fillSelect(select, values, current) {
    const options = values.map((v) => (typeof v === "string" ? { value: v, text: v } : v));
    if (current && !options.some((o) => o.value === current)) options.push({ value: current, text: current });
    select.replaceChildren(...options.map((o) => el("option", o)));
    select.value = current || (options[0] ? options[0].value : "");
  }

  /** Open an edit form: its title, shown, scrolled into view. */
  function openEditForm(form, id) {
    text($("[data-edit-id]", form), id);
    form.dataset.editing = id;
    form.hidden = false;
    form.scrollIntoView({ block: "nearest" });
  }

  function closeEditForm(form) {
    form.hidden = true;
    delete form.dataset.editing;
  }

  /** The Edit button of an account row. */
  const editButton = (account, open) => el("button", {
    type: "button", class: "secondary", "data-action": "edit", text: "Edit",
    "aria-label": `Edit ${account.id}`, onclick: () => load(() => open(account.id)),
  });

  /** The gateways of one account, for an edit form's gateway select. */
  async function gatewaysOf(path, accountId) {
    return (await get(path)).filter((g) => g.account_id === accountId);
  }

  /** Fill an edit form's gateway select and fields; hidden when there is none. */
  function showGateways(form, gateways, spec) {
    const select = form.elements.gateway_name;
    fillSelect(select, gateways.map((g) => g.name), "");
    const fields = $("[data-gateway-fields]", form) || select.closest("fieldset");
    fields.hidden = !gateways.length;
    fields.disabled = !gateways.length;
    const none = $("[data-no-gateway]", form);
    if (none) none.hidden = Boolean(gateways.length);
    const chosen = () => gateways.find((g) => g.name === select.value);
    select.onchange = () => { if (chosen()) showFields(form, spec, chosen()); };
    select.onchange();
    return chosen;
  }

  /** PATCH a gateway with its changed fields (if any), noting it in `saved`. */
  async function saveGateway(path, gateway, changes, saved) {
    if (!gateway || !Object.keys(changes).length) return;
    await api("PATCH", `${path}/${encodeURIComponent(gateway.name)}`, { body: changes });
    saved.push(`gateway ${gateway.name} (${Object.keys(changes).join(", ")})`);
  }

  /** Save an edit form, report what was saved, close it and reload the page's table.
   *  If a later write is refused, the error also says what was saved before it. */
  function setupEditForm(form, save, reload) {
    $('[data-action="cancel"]', form).addEventListener("click", () => { closeEditForm(form); say(""); });
    onSubmit(form, async () => {
      const id = form.dataset.editing;
      const saved = [];
      try {
        await save(form, saved);
      } catch (err) {
        if (!saved.length || err.sessionEnded) throw err;
        load(reload);
        throw new ApiError(err.status, err.field, `${err.rule} (already saved: ${saved.join("; ")})`);
      }
      say(saved.length ? `${id}: saved ${saved.join("; ")}.` : `${id}: nothing changed.`, "ok");
      closeEditForm(form);
      await reload();
    });
  }

  // ================================================================ 5. customers

  async function loadCustomers() {
    const { accounts, gateways, tables } = await accountsWith("customer", "/mapping-gateways");
    fillRateTableSelects(tables, $("#customer-form"));
    fillTable("#customers-table", accounts, (a) => [
      a.id, a.name, a.status, num(a.balance), num(a.credit_limit),
      (gateways[a.id] || []).map((g) => g.name + (g.locked ? " (locked)" : "")).join(", "),
      rateTableSelect(a, tables, loadCustomers), actionCell(lockButton(a, loadCustomers), editButton(a, editCustomer)),
    ], (a) => ({ "data-account": a.id, "data-status": a.status }), "No customers yet");
  }

  const ACCOUNT_EDIT = { name: "text", status: "text", rate_table: "text", concurrent_limit: "limit" };
  const MAPPING_EDIT = { addresses: "list", rate_limit: "limit", max_concurrent_calls: "limit",
                         conversation_limitation: "int", locked: "flag" };
  let customerEdit = null;     // {account, gateway()} of the open edit form

  /** Open the edit form with the customer's account and mapping gateways as stored now. */
  async function editCustomer(id) {
    const form = $("#customer-edit-form");
    const [account, gateways, tables] = await Promise.all([
      get(`/accounts/${encodeURIComponent(id)}`), gatewaysOf("/mapping-gateways", id), get("/rate-tables")]);
    fillRateTableSelects(tables, form);
    fillSelect(form.elements.status, ["Active", "Locked"], account.status);
    const rateTable = form.elements.rate_table;
    if (account.rate_table && !tables.some((t) => t.name === account.rate_table)) {
      rateTable.append(el("option", { value: account.rate_table, text: account.rate_table }));
    }
    showFields(form, ACCOUNT_EDIT, account);
    form.elements.credit_limit.value = account.credit_limit;     // money: the API's string
    customerEdit = { account, gateway: showGateways(form, gateways, MAPPING_EDIT) };
    openEditForm(form, id);
  }

  /** Save what changed: the account, its credit limit (a ledger entry), the gateway.
   *  Every field is read and checked before the first write. */
  async function saveCustomer(form, saved) {
    const { account, gateway } = customerEdit;
    const id = encodeURIComponent(account.id);
    const changes = changedFields(form, ACCOUNT_EDIT, account);
    const creditLimit = form.elements.credit_limit.value.trim();       // money: sent as typed
    const gatewayChanges = gateway() ? changedFields(form, MAPPING_EDIT, gateway()) : {};
    if (Object.keys(changes).length) {
      await api("PATCH", `/accounts/${id}`, { body: changes });
      saved.push(`account (${Object.keys(changes).join(", ")})`);
    }
    if (creditLimit !== String(account.credit_limit)) {
      await api("PUT", `/accounts/${id}/credit-limit`, { body: { credit_limit: creditLimit } });
      saved.push(`credit limit ${creditLimit}`);
    }
    await saveGateway("/mapping-gateways", gateway(), gatewayChanges, saved);
  }

  function showAuthFields() {
    const mode = $('#customer-form [name="auth_mode"]').value;
    for (const label of $$("#customer-form [data-auth]")) label.hidden = label.dataset.auth !== mode;
  }

  function setupCustomers() {
    setupEditForm($("#customer-edit-form"), saveCustomer, loadCustomers);
    $('#customer-form [name="auth_mode"]').addEventListener("change", showAuthFields);
    showAuthFields();
    onSubmit($("#customer-form"), async (v, form) => {
      const account = compact({ id: v.id, name: v.name, kind: "customer", rate_table: v.rate_table,
                                credit_limit: v.credit_limit });
      const gateway = compact({
        name: v.gateway_name || v.id, account_id: v.id, auth_mode: v.auth_mode,
        addresses: splitList(v.addresses),
        sip_port: v.auth_mode === "IP+Port" ? optionalInt(v, "sip_port") : undefined,
        username: v.auth_mode === "Password" ? v.username : undefined,
        password: v.auth_mode === "Password" ? form.elements.password.value : undefined,
        rate_limit: optionalInt(v, "rate_limit"),
        max_concurrent_calls: optionalInt(v, "max_concurrent_calls"),
      });
      await createAccountWithGateway(account, "/mapping-gateways", gateway);
      form.reset();
      showAuthFields();
      say(`Customer ${account.id} added with mapping gateway ${gateway.name}.`, "ok");
      await loadCustomers();
    });
  }

  function customersPage() {
    closeEditForm($("#customer-edit-form"));
    load(loadCustomers);
  }

  // ================================================================ 6. vendors

  async function loadVendors() {
    const { accounts, gateways, tables } = await accountsWith("vendor", "/routing-gateways");
    fillRateTableSelects(tables, $("#vendor-form"));
    const gw = (a, show) => (gateways[a.id] || []).map(show).join(", ");
    fillTable("#vendors-table", accounts, (a) => [
      a.id, a.name, a.status, num(a.balance),
      gw(a, (g) => g.name + (g.locked ? " (locked)" : "")),
      gw(a, (g) => `${g.address}:${g.port}/${g.protocol}`),
      gw(a, (g) => (g.prefixes || []).map((p) => p || "(all)").join(" ")),
      num(gw(a, (g) => g.priority)), num(gw(a, (g) => (g.line_limit == null ? "no limit" : g.line_limit))),
      actionCell(lockButton(a, loadVendors), editButton(a, editVendor)),
    ], (a) => ({ "data-account": a.id, "data-status": a.status }), "No vendors yet");
  }

  const ROUTING_EDIT = { address: "text", port: "int", prefixes: "prefixes", priority: "int", line_limit: "limit",
                         locked: "flag", protect_route: "flag", switch_until_connect: "flag" };
  let vendorEdit = null;       // {gateway()} of the open edit form

  /** Open the edit form with the vendor's routing gateways as stored now. */
  async function editVendor(id) {
    const form = $("#vendor-edit-form");
    const gateways = await gatewaysOf("/routing-gateways", id);
    if (!gateways.length) {
      closeEditForm(form);
      return say(`${id} has no routing gateway to edit.`, "error");
    }
    vendorEdit = { gateway: showGateways(form, gateways, ROUTING_EDIT) };
    openEditForm(form, id);
  }

  async function saveVendor(form, saved) {
    const gateway = vendorEdit.gateway();
    await saveGateway("/routing-gateways", gateway, changedFields(form, ROUTING_EDIT, gateway), saved);
  }

  function setupVendors() {
    setupEditForm($("#vendor-edit-form"), saveVendor, loadVendors);
    onSubmit($("#vendor-form"), async (v, form) => {
      // the rate table is the vendor account's default cost table and the gateway's own
      const account = compact({ id: v.id, name: v.name, kind: "vendor", rate_table: v.rate_table });
      const gateway = compact({
        name: v.gateway_name || v.id, account_id: v.id, address: v.address,
        port: optionalInt(v, "port"), protocol: v.protocol,
        prefixes: splitList(v.prefixes).length ? splitList(v.prefixes) : undefined,
        priority: optionalInt(v, "priority"), line_limit: optionalInt(v, "line_limit"),
        rate_table: v.rate_table,
      });
      await createAccountWithGateway(account, "/routing-gateways", gateway);
      form.reset();
      say(`Vendor ${account.id} added with routing gateway ${gateway.name}.`, "ok");
      await loadVendors();
    });
  }

  function vendorsPage() {
    closeEditForm($("#vendor-edit-form"));
    load(loadVendors);
  }

  // ================================================================ 6b. phones

  /** PATCH or DELETE a phone, report, and reload the list. */
  async function changePhone(method, number, body, done) {
    try {
      await api(method, `/phones/${encodeURIComponent(number)}`, body ? { body } : undefined);
      say(done, "ok");
    } catch (err) {
      sayError(err);
    }
    load(loadPhones);
  }

  function phoneButtons(phone) {
    const lock = el("button", {
      type: "button", class: "secondary", "data-action": "lock", text: phone.locked ? "Unlock" : "Lock",
      onclick: () => changePhone("PATCH", phone.number, { locked: !phone.locked },
        `Phone ${phone.number} ${phone.locked ? "unlocked" : "locked"}.`),
    });
    const remove = el("button", {
      type: "button", class: "secondary danger", "data-action": "delete", text: "Delete",
      onclick: () => {
        if (window.confirm(`Delete phone ${phone.number}?`)) {
          changePhone("DELETE", phone.number, null, `Phone ${phone.number} deleted.`);
        }
      },
    });
    return actionCell(lock, remove);
  }

  async function loadPhones() {
    const [phones, accounts] = await Promise.all([get("/phones"), get("/accounts")]);
    const select = $('#phone-form [name="account_id"]');
    const chosen = select.value;
    select.replaceChildren(...accounts.map((a) =>
      el("option", { value: a.id, text: `${a.id} – ${a.name} (${a.kind})` })));
    if (accounts.some((a) => a.id === chosen)) select.value = chosen;
    fillTable("#phones-table", phones, (ph) => [
      ph.number, ph.account_id, num(ph.line_limit == null ? "no limit" : ph.line_limit),
      { text: ph.locked ? "Yes" : "No", class: ph.locked ? "locked" : undefined }, phoneButtons(ph),
    ], (ph) => ({ "data-number": ph.number, "data-locked": String(Boolean(ph.locked)) }), "No phones yet");
  }

  /** The registered phones; a refusal (agents may not see them) stays inside the table. */
  async function loadOnlinePhones() {
    let online;
    try {
      online = await get("/online-phones");
    } catch (err) {
      if (err.sessionEnded) throw err;
      text("#online-phones-count", "");
      return fillTable("#online-phones-table", [], () => [], null, errorText(err));
    }
    text("#online-phones-count", `${online.length} registered`);
    fillTable("#online-phones-table", online, (o) => [
      o.user, { text: o.contact, class: "wrap" }, o.source, o.transport, num(o.expires_in), o.user_agent,
    ], (o) => ({ "data-user": o.user }), "No phone is registered");
  }

  function setupPhones() {
    onSubmit($("#phone-form"), async (v, form) => {
      const phone = compact({ number: v.number, password: form.elements.password.value,
                              account_id: v.account_id, line_limit: optionalInt(v, "line_limit") });
      await api("POST", "/phones", { body: phone });
      form.elements.number.value = "";
      form.elements.password.value = "";
      form.elements.line_limit.value = "";
      say(`Phone ${phone.number} added to ${phone.account_id}.`, "ok");
      await loadPhones();
    });
  }

  function phonesPage() {
    load(loadPhones);
    every(5000, loadOnlinePhones);
  }

  // ================================================================ 7. payments

  let paymentAccounts = [];

  function showBalance(account) {
    text("#payment-balance", account
      ? `${account.id}: balance ${account.balance}, credit limit ${account.credit_limit}` : "");
  }

  async function loadLedger(id) {
    if (!id) return fillTable("#ledger-table", [], () => [], null, "Choose an account");
    const entries = await get(`/accounts/${encodeURIComponent(id)}/ledger`);
    fillTable("#ledger-table", entries, (e) => [
      fmtTime(e.time), e.kind, num(e.amount), num(e.balance_after), e.operator, { text: e.memo, class: "wrap" },
    ], (e) => ({ "data-kind": e.kind }), "No entries yet");
  }

  function chosenAccount() {
    const id = $("#payment-account").value;
    return paymentAccounts.find((a) => a.id === id);
  }

  async function loadPayments() {
    paymentAccounts = await get("/accounts");
    const select = $("#payment-account");
    const chosen = select.value;
    select.replaceChildren(...paymentAccounts.map((a) =>
      el("option", { value: a.id, text: `${a.id} – ${a.name} (${a.kind})` })));
    if (paymentAccounts.some((a) => a.id === chosen)) select.value = chosen;
    showBalance(chosenAccount());
    await loadLedger(select.value);
  }

  function setupPayments() {
    $("#payment-account").addEventListener("change", () => {
      showBalance(chosenAccount());
      load(() => loadLedger($("#payment-account").value));
    });
    onSubmit($("#payment-form"), async (v, form) => {
      const id = v.account_id;
      // the amount goes as typed: a decimal string, checked by the switch
      const entry = await api("POST", `/accounts/${encodeURIComponent(id)}/payments`,
        { body: { kind: v.kind, amount: v.amount, memo: v.memo || "" } });
      say(`Payment saved (${entry.kind} ${entry.amount}). Balance of ${id}: ${entry.balance_after}.`, "ok");
      form.elements.amount.value = "";
      form.elements.memo.value = "";
      paymentAccounts = await get("/accounts");
      // the resulting balance as the ledger entry states it
      text("#payment-balance", `${id}: balance ${entry.balance_after}` +
        (chosenAccount() ? `, credit limit ${chosenAccount().credit_limit}` : ""));
      await loadLedger(id);
    });
  }

  function paymentsPage() {
    load(loadPayments);
  }

  // ================================================================ 8. rate tables

  async function loadRateTables() {
    const tables = await get("/rate-tables");
    fillRateTableSelects(tables, $("#rate-import-form"));
    fillTable("#rate-tables-table", tables, (t) => {
      const link = el("a", { class: "button secondary", "data-action": "export",
        href: `${API}/rate-tables/${encodeURIComponent(t.name)}/rates`, download: `${t.name}.csv`, text: "Export CSV" });
      tokenDownloadLink(link, () => `${t.name}.csv`);
      return [t.name, { text: t.memo, class: "wrap" }, num(t.rates), link];
    }, (t) => ({ "data-name": t.name }), "No rate tables yet");
  }

  /** The text of a chosen file (FileReader, as UTF-8). */
  function readFile(file) {
    return new Promise((resolve, reject) => {
      const reader = new FileReader();
      reader.onload = () => resolve(reader.result);
      reader.onerror = () => reject(new ApiError(0, "file", "could not be read"));
      reader.readAsText(file);
    });
  }

  function setupRateTables() {
    onSubmit($("#rate-table-form"), async (v, form) => {
      await api("POST", "/rate-tables", { body: compact({ name: v.name, memo: v.memo }) });
      form.reset();
      say(`Rate table ${v.name} added.`, "ok");
      await loadRateTables();
    });
    onSubmit($("#rate-import-form"), async (v, form) => {
      const file = $("#rate-import-file").files[0];
      if (!v.name) throw new ApiError(0, "name", "choose a rate table");
      if (!file) throw new ApiError(0, "file", "choose a CSV file");
      const csv = await readFile(file);
      const answer = await api("PUT", `/rate-tables/${encodeURIComponent(v.name)}/rates`, { csv });
      $("#rate-import-file").value = "";
      say(`Imported ${answer.rates} rates into ${v.name}.`, "ok");
      await loadRateTables();
    });
  }

  function ratesPage() {
    load(loadRateTables);
  }

  // ================================================================ 9. revenue

  async function loadTraffic() {
    const by = $("#traffic-by").value;
    text("#traffic-key", by === "gateway" ? "Gateway" : "Customer");
    const rows = await get(`/reports/traffic${query({ by })}`);
    fillTable("#traffic-table", rows, (r) => [
      r[by], num(r.calls), num(r.answered), num(fmtNum(r.asr, 1)), num(fmtNum(r.acd_s, 1)), num(fmtNum(r.pdd_ms, 0)),
    ], null, "No calls today");
  }

  async function loadTotals() {
    const today = (await get("/dashboard")).today || {};
    for (const name of ["income", "cost", "profit"]) text(`[data-total="${name}"] .tile-value`, show(today[name]));
  }

  async function loadTopCustomers() {
    const top = await get(`/reports/income${query({ top: 10 })}`);
    fillTable("#revenue-table", top, (r) => [r.customer, num(r.calls), num(r.fee), num(r.cost), num(r.profit)],
      (r) => ({ "data-customer": r.customer }), "No income today");
  }

  function setupRevenue() {
    $("#traffic-by").addEventListener("change", () => load(loadTraffic));
  }

  function revenuePage() {
    load(loadTotals);
    load(loadTopCustomers);
    load(loadTraffic);
  }

  // ================================================================ 10. alarms

  function alarmsPage() {
    every(5000, async () => {
      const alarms = await get("/alarms");
      text("#alarms-count", `${alarms.length} active`);
      fillTable("#alarms-table", alarms, (a) => [
        { text: a.severity, class: "severity" }, a.kind, { text: a.text, class: "wrap" }, fmtTime(a.since),
      ], (a) => ({ "data-severity": a.severity, "data-key": a.key }), "No alarms");
    });
  }

  // ================================================================ 11. system

  let systemHistory = [];

  /** The other figures of a section (memory, disk, network) as "name value" text. */
  function details(section, skip) {
    return Object.entries(section || {})
      .filter(([key, value]) => !skip.includes(key) && (typeof value === "number" || typeof value === "string"))
      .map(([key, value]) => {
        const label = key.replace(/_(bytes_per_s|bytes|percent)$/, "").replace(/_/g, " ");
        if (/percent$/.test(key)) return `${label} ${fmtNum(value, 1)} %`;
        if (/bytes_per_s$/.test(key)) return `${label} ${fmtBytes(value, true)}`;
        if (/bytes$|^(total|used|free|available)$/.test(key)) return `${label} ${fmtBytes(value)}`;
        return `${label} ${typeof value === "number" ? fmtNum(value, 1) : value}`;
      }).join(" · ");
  }

  function showCores(cores) {
    $("#system-cores").replaceChildren(...(cores || []).map((p, i) => {
      const width = Math.max(0, Math.min(100, Number(p) || 0));
      return el("div", { class: "bar", "data-core": i },
        el("span", { text: `core ${i}` }),
        el("span", { class: "bar-track" }, el("span", { class: "bar-fill", style: `width:${width}%`, "data-core-fill": i })),
        el("span", { class: "bar-value", text: `${fmtNum(p, 0)} %` }));
    }));
  }

  function showSystem(data) {
    const latest = data.latest || {};
    const memory = latest.memory || {}, disk = latest.disk || {}, net = latest.network || {};
    text("#system-cpu .tile-value", `${fmtNum(latest.cpu_percent, 1)} %`);
    text("#system-memory .tile-value", `${fmtNum(memory.used_percent, 1)} %`);
    text("#system-memory .tile-detail", details(memory, ["used_percent"]));
    text("#system-disk .tile-value", `${fmtNum(disk.used_percent, 1)} %`);
    text("#system-disk .tile-detail", details(disk, ["used_percent"]));
    text("#system-network .tile-value", `↓ ${fmtBytes(net.rx_bytes_per_s, true)} ↑ ${fmtBytes(net.tx_bytes_per_s, true)}`);
    text("#system-network .tile-detail", details(net, ["rx_bytes_per_s", "tx_bytes_per_s"]));
    showCores(latest.cpu_per_core);
    systemHistory = data.history || [];
    drawChart();
  }

  /** CPU % and memory % over the history, drawn on the canvas (0–100 % scale). */
  function drawChart() {
    const canvas = $("#system-chart");
    if (!canvas || canvas.closest("section").hidden) return;
    const ratio = window.devicePixelRatio || 1;
    const width = canvas.clientWidth, height = canvas.clientHeight;
    canvas.width = Math.round(width * ratio);
    canvas.height = Math.round(height * ratio);
    const g = canvas.getContext("2d");
    if (!g) return;
    g.setTransform(ratio, 0, 0, ratio, 0, 0);
    g.clearRect(0, 0, width, height);

    const css = getComputedStyle(document.documentElement);
    const left = 36, right = 10, top = 10, bottom = 24;
    const plotW = Math.max(10, width - left - right), plotH = Math.max(10, height - top - bottom);
    const times = systemHistory.map((p) => Number(p.time)).filter(Number.isFinite);
    const t1 = times.length ? Math.max(...times) : Date.now() / 1000;
    const t0 = times.length ? Math.min(...times, t1 - 3600) : t1 - 3600;
    const x = (t) => left + ((t - t0) / Math.max(1, t1 - t0)) * plotW;
    const y = (p) => top + plotH - (Math.max(0, Math.min(100, p)) / 100) * plotH;

    // grid and labels
    g.font = "11px system-ui, sans-serif";
    g.fillStyle = "#637381";
    g.strokeStyle = "#e5e7eb";
    g.lineWidth = 1;
    for (const p of [0, 25, 50, 75, 100]) {
      g.beginPath(); g.moveTo(left, y(p) + 0.5); g.lineTo(left + plotW, y(p) + 0.5); g.stroke();
      g.fillText(`${p}%`, 2, y(p) + 4);
    }
    const minutes = (t1 - t0) / 60;
    const step = minutes > 30 ? 15 : minutes > 10 ? 5 : 1;
    for (let m = 0; m <= minutes; m += step) {
      const t = t1 - m * 60, label = m === 0 ? "now" : `-${m}m`;
      const w = g.measureText(label).width;
      g.fillText(label, Math.max(left, Math.min(x(t) - w / 2, width - w - 2)), height - 6);
    }
    if (!systemHistory.length) {
      g.fillText("no history yet", left + 8, top + 16);
      return;
    }
    line(g, systemHistory, x, y, "cpu_percent", css.getPropertyValue("--cpu").trim() || "#2563eb");
    line(g, systemHistory, x, y, "memory_percent", css.getPropertyValue("--memory").trim() || "#d97706");
  }

  function line(g, points, x, y, field, colour) {
    g.strokeStyle = colour;
    g.lineWidth = 2;
    g.beginPath();
    let started = false;
    for (const p of points) {
      const t = Number(p.time), v = Number(p[field]);
      if (!Number.isFinite(t) || !Number.isFinite(v)) { started = false; continue; }
      if (started) g.lineTo(x(t), y(v)); else g.moveTo(x(t), y(v));
      started = true;
    }
    g.stroke();
  }

  function systemPage() {
    every(10000, async () => showSystem(await get("/system")));
  }

  function setupSystem() {
    let pending = null;
    window.addEventListener("resize", () => {
      clearTimeout(pending);
      pending = setTimeout(drawChart, 150);
    });
  }

  // ================================================================ 12. settings

  // when a stored parameter takes effect (its declaration: control/params.py)
  const APPLIES = { hot: "at once", restart: "after restart" };

  /** Store one parameter as typed; the row and #message show how it applies. */
  async function saveParameter(row, input) {
    const name = row.dataset.param;
    const answer = await api("PUT", `/parameters/${encodeURIComponent(name)}`, { body: { value: input.value.trim() } });
    input.value = answer.value;
    input.defaultValue = answer.value;
    text($("[data-pending]", row), answer.applies === "after restart" ? "yes" : "no");
    row.dataset.pending = String(answer.applies === "after restart");
    say(`${answer.name} is now ${answer.value}; it applies ${answer.applies}.`, "ok");
  }

  function parameterRow(p) {
    const onOff = p.default === "On" || p.default === "Off";
    const input = el("input", { name: "value", value: p.value, "aria-label": `Value of ${p.name}`,
                                list: onOff ? "param-on-off" : undefined, autocomplete: "off" });
    const button = el("button", { type: "button", class: "secondary", "data-action": "save", text: "Save" });
    const save = async () => {
      button.disabled = true;
      try {
        await saveParameter(button.closest("tr"), input);
      } catch (err) {
        sayError(err);
      } finally {
        button.disabled = false;
      }
    };
    button.addEventListener("click", save);
    input.addEventListener("keydown", (event) => { if (event.key === "Enter") save(); });
    return [
      { node: el("div", { class: "param-name" }, el("strong", { text: p.name }), el("small", { class: "muted", text: p.help })),
        class: "wrap" },
      input, button, p.default, { text: APPLIES[p.applies] || p.applies, "data-applies": p.applies },
      { text: p.pending_restart ? "yes" : "no", "data-pending": true },
    ];
  }

  /** Show only the parameters whose name or help holds the filter text. */
  function filterParameters() {
    const wanted = $("#params-filter").value.trim().toLowerCase();
    for (const row of $$("#params-table tbody tr[data-param]")) {
      row.hidden = Boolean(wanted) && !row.dataset.search.includes(wanted);
    }
  }

  async function loadParameters() {
    const params = await get("/parameters");
    fillTable("#params-table", params, parameterRow, (p) => ({
      "data-param": p.name, "data-pending": String(Boolean(p.pending_restart)),
      "data-search": `${p.name} ${p.help || ""}`.toLowerCase(),
    }), "No parameters");
    filterParameters();
  }

  async function loadWebAccess() {
    const access = await get("/web-access");
    $('#web-access-form [name="allow"]').value = (access.allow || []).join("\n");
  }

  /** PUT the allow list; a list that shuts out this browser or loopback needs the
   *  operator's confirmation, then goes again with confirm: true. */
  async function saveWebAccess(allow) {
    try {
      return await api("PUT", "/web-access", { body: { allow, confirm: false } });
    } catch (err) {
      if (err.status !== 400 || !/confirm/.test(err.rule || "")) throw err;
      if (!window.confirm(`${errorText(err)}\n\nApply this list anyway?`)) return null;
      return api("PUT", "/web-access", { body: { allow, confirm: true } });
    }
  }

  function setupSettings() {
    $("#params-filter-form").addEventListener("submit", (event) => event.preventDefault());
    $("#params-filter").addEventListener("input", filterParameters);
    onSubmit($("#web-access-form"), async (v, form) => {
      const allow = (form.elements.allow.value || "").split(/[\s,]+/).filter(Boolean);
      const answer = await saveWebAccess(allow);
      if (!answer) return say("The Web access list was not changed.", "info");
      form.elements.allow.value = answer.allow.join("\n");
      const warnings = (answer.warnings || []).length ? ` Warning: ${answer.warnings.join("; ")}.` : "";
      say((answer.allow.length ? `Web access allowed from ${answer.allow.join(", ")}.`
                               : "Web access allowed from every address.") + warnings, "ok");
    });
  }

  function settingsPage() {
    load(loadParameters);
    load(loadWebAccess);
  }

  // ================================================================ router

  const ENTER = {
    login: loginPage, dashboard: dashboardPage, calls: callsPage, cdrs: cdrsPage,
    customers: customersPage, vendors: vendorsPage, phones: phonesPage, payments: paymentsPage, rates: ratesPage,
    revenue: revenuePage, alarms: alarmsPage, system: systemPage, settings: settingsPage,
  };

  function go(page) {
    if (location.hash !== `#${page}`) location.hash = `#${page}`;
    else route();
  }

  /** Show the page the hash names (the login page without a session). */
  function route() {
    let page = location.hash.replace(/^#/, "") || "dashboard";
    const signedIn = Boolean(session.token());
    if (!signedIn && page !== "login") {
      if (PAGES.includes(page)) sessionStorage.setItem(`${STORE_KEY}.after`, page);
      page = "login";
      history.replaceState(null, "", "#login");
    } else if (signedIn && (page === "login" || !ENTER[page])) {
      page = "dashboard";
      history.replaceState(null, "", "#dashboard");
    }
    stopPage();
    if (page !== "login") say("");
    for (const section of $$("section[data-page]")) section.hidden = section.dataset.page !== page;
    for (const link of $$("nav a[data-nav]")) {
      if (link.dataset.nav === page) link.setAttribute("aria-current", "page");
      else link.removeAttribute("aria-current");
    }
    $("#top").hidden = !signedIn;
    const who = session.get();
    text("#whoami", who ? `${who.name || who.id} (${who.actor})` : "");
    ENTER[page]();
  }

  function start() {
    setupLogin();
    setupCdrs();
    setupCustomers();
    setupVendors();
    setupPhones();
    setupPayments();
    setupRateTables();
    setupRevenue();
    setupSystem();
    setupSettings();
    window.addEventListener("hashchange", route);
    route();
  }

  start();
})();

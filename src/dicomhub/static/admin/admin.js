// The CORS form of dicomhub's admin page (docs/admin.md).
//
// It reads the settings with GET /admin/cors and saves them with PUT, in the
// admin API's JSON shape. It does not check the values itself: the server's
// validator, the same one that checks the configuration file, answers 400 with
// the key, the value and the rule, and the page shows that message. The one
// rule the form enforces is the one it can show as it is typed: credentials
// cannot be allowed while "*" is among the origins.
"use strict";

const API = "cors"; // relative to /admin/, so a path prefix in front still works
const METHODS = ["DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT"];

// The API's keys and the form elements that edit them.
const FIELDS = {
  origins: "origins",
  headers: "headers",
  methods: "methods",
  maxAge: "max-age",
  allowCredentials: "allow-credentials",
  exposeHeaders: "expose-headers",
  allowPrivateNetwork: "allow-private-network",
};

const $ = (id) => document.getElementById(id);
const methodBoxes = () => Array.from(document.querySelectorAll('input[name="method"]'));

function lines(text) {
  return text.split(/\r?\n/).map((s) => s.trim()).filter(Boolean);
}

function names(text) {
  return text.split(/[,\r\n]/).map((s) => s.trim()).filter(Boolean);
}

function setStatus(state, text) {
  const status = $("status");
  status.dataset.state = state;
  status.textContent = text;
}

function clearMessages() {
  const message = $("message");
  message.hidden = true;
  message.textContent = "";
  const warnings = $("warnings");
  warnings.hidden = true;
  warnings.replaceChildren();
  for (const id of Object.values(FIELDS)) {
    $(id).removeAttribute("aria-invalid");
  }
}

function showMessage(text, key) {
  const message = $("message");
  message.textContent = text;
  message.hidden = false;
  if (key && FIELDS[key]) {
    $(FIELDS[key]).setAttribute("aria-invalid", "true");
  }
}

function showWarnings(list) {
  const warnings = $("warnings");
  warnings.replaceChildren(
    ...list.map((text) => {
      const item = document.createElement("li");
      item.textContent = text;
      return item;
    }),
  );
  warnings.hidden = list.length === 0;
}

// --- the form and the API's JSON ------------------------------------------

function fill(settings) {
  $("origins").value = (settings.origins || []).join("\n");
  $("headers").value = (settings.headers || []).join(", ");
  const all = (settings.methods || []).includes("*");
  for (const box of methodBoxes()) {
    box.checked = all || (settings.methods || []).includes(box.value);
  }
  $("max-age").value = settings.maxAge === null || settings.maxAge === undefined
    ? ""
    : String(settings.maxAge);
  $("allow-credentials").checked = Boolean(settings.allowCredentials);
  $("expose-headers").value = (settings.exposeHeaders || []).join(", ");
  $("allow-private-network").checked = Boolean(settings.allowPrivateNetwork);
  syncSelectAll();
  syncCredentials();
}

function maxAgeValue() {
  const text = $("max-age").value.trim();
  if (text === "") return null;
  // Anything else goes to the server as typed, so its validator names it.
  return /^-?\d+$/.test(text) ? Number(text) : text;
}

function read() {
  const checked = methodBoxes().filter((box) => box.checked).map((box) => box.value);
  const credentials = $("allow-credentials");
  return {
    origins: lines($("origins").value),
    headers: names($("headers").value),
    // Every box ticked is the portal's "Select all", stored as "*".
    methods: checked.length === METHODS.length ? ["*"] : checked,
    maxAge: maxAgeValue(),
    allowCredentials: credentials.checked && !credentials.disabled,
    exposeHeaders: names($("expose-headers").value),
    allowPrivateNetwork: $("allow-private-network").checked,
  };
}

function syncSelectAll() {
  const boxes = methodBoxes();
  const ticked = boxes.filter((box) => box.checked).length;
  const all = $("methods-all");
  all.checked = ticked === boxes.length;
  all.indeterminate = ticked > 0 && ticked < boxes.length;
}

function syncCredentials() {
  // Fetch #cors-check: "*" never passes on a credentialed request.
  const star = lines($("origins").value).includes("*");
  const box = $("allow-credentials");
  if (star) box.checked = false;
  box.disabled = star;
  $("credentials-note").hidden = !star;
}

// --- what the server says besides the body ---------------------------------

function describeSource(response) {
  const version = (response.headers.get("ETag") || "").replaceAll('"', "");
  const modified = response.headers.get("Last-Modified");
  const when = modified ? `, ${new Date(modified).toISOString().slice(0, 19)}Z` : "";
  if (response.headers.get("Dicomhub-Cors-Source") === "admin") {
    return `In force: the settings saved here (version ${version}${when}). ` +
      "“Use configuration file” returns to the [cors] table of the configuration file.";
  }
  return "In force: the [cors] settings of the configuration file and environment.";
}

// Warning: 299 dicomhub "text" (RFC 9111 §5.5); fetch joins several with ", ".
function warningsOf(response) {
  const field = response.headers.get("Warning") || "";
  const found = [];
  for (const match of field.matchAll(/299 dicomhub "((?:[^"\\]|\\.)*)"/g)) {
    const text = match[1].replace(/\\(.)/g, "$1");
    found.push(
      text.replace(/\\(?:x([0-9a-f]{2})|u([0-9a-f]{4})|U([0-9a-f]{8}))/gi,
        (_, x, u, U) => String.fromCodePoint(parseInt(x || u || U, 16))),
    );
  }
  return found;
}

async function refusalOf(response) {
  const text = await response.text();
  try {
    const body = JSON.parse(text);
    if (body && typeof body.message === "string") return body;
  } catch (error) {
    // Not JSON: a plain-text answer from a layer in front of the API.
  }
  return { message: text || `${response.status} ${response.statusText}` };
}

// --- actions ---------------------------------------------------------------

// With [auth] api_keys set, the API wants "Authorization: Bearer <key>"; the
// key typed here lives in this tab's sessionStorage only.
const KEY_STORE = "dicomhub-api-key";

function apiKey() {
  return sessionStorage.getItem(KEY_STORE) || "";
}

async function send(method, body) {
  const init = { method, headers: { Accept: "application/json" }, cache: "no-store" };
  if (apiKey()) {
    init.headers.Authorization = `Bearer ${apiKey()}`;
  }
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  return fetch(API, init);
}

async function apply(method, body, doneText) {
  const loading = method === "GET";
  clearMessages();
  setStatus(loading ? "loading" : "saving", loading ? "Loading…" : "Saving…");
  let response;
  try {
    response = await send(method, body);
  } catch (error) {
    setStatus("failed", loading
      ? "Could not load the settings: the server did not answer."
      : "The server did not answer; nothing was changed.");
    showMessage(String(error));
    return;
  }
  if (!response.ok) {
    const refusal = await refusalOf(response);
    if (loading) {
      // A GET changes nothing, so "not saved" would be wrong here.
      setStatus("failed", `Could not load the settings (${response.status}): ${refusal.message}`);
      if (response.status === 401) {
        showMessage("This server needs an API key or an access token with the admin role: type it in the “API key” field above and choose “Use key”.");
      }
      return;
    }
    setStatus("refused", `Not saved (${response.status}); the settings in force are unchanged.`);
    showMessage(refusal.message, refusal.key);
    return;
  }
  fill(await response.json());
  $("source").textContent = describeSource(response);
  const warnings = warningsOf(response);
  showWarnings(warnings);
  setStatus(method === "GET" ? "ready" : "saved", doneText + (warnings.length ? " With warnings:" : ""));
}

function load() {
  return apply("GET", undefined, "Showing the settings in force.");
}

function save(event) {
  event.preventDefault();
  return apply("PUT", read(), "Saved; in force from the next request.");
}

function reset() {
  return apply("DELETE", undefined, "Back to the configuration file's settings.");
}

function changed() {
  const state = $("status").dataset.state;
  if (state !== "loading" && state !== "saving") {
    setStatus("changed", "Unsaved changes.");
  }
}

document.addEventListener("DOMContentLoaded", () => {
  const form = $("cors-form");
  form.addEventListener("submit", save);
  form.addEventListener("input", changed);
  $("origins").addEventListener("input", syncCredentials);
  $("methods-all").addEventListener("change", (event) => {
    for (const box of methodBoxes()) box.checked = event.target.checked;
    syncSelectAll();
  });
  for (const box of methodBoxes()) box.addEventListener("change", syncSelectAll);
  $("discard").addEventListener("click", load);
  $("reset").addEventListener("click", reset);
  load();
});

document.getElementById("api-key-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const field = document.getElementById("api-key");
  sessionStorage.setItem(KEY_STORE, field.value.trim());
  field.value = "";
  load();
});

// The demo viewer: a study list from QIDO-RS and one rendered image from WADO-RS,
// both fetched cross-origin from dicomhub (PS3.18 §10.6 Search Transaction,
// §10.4 Retrieve Transaction on a rendered resource).
//
// State for scripts and tests: #status and #image-status carry data-state
// ("loading", "ready", "failed"); each study row carries data-study-uid.

const DEFAULT_ROOT = "http://127.0.0.1:8080/v2";
const params = new URLSearchParams(location.search);
const root = (params.get("root") || DEFAULT_ROOT).replace(/\/+$/, "");
// ?token=... is sent as a bearer token, as a signed-in viewer would send one.
// An Authorization header is not CORS-safelisted, so every request then needs a
// preflight that the server's [cors] headers setting must allow (Fetch
// standard, "CORS-preflight fetch").
const token = params.get("token");

// Study-level attributes beyond the default set (PS3.18 Table 10.6.3-3):
// StudyDescription, ModalitiesInStudy, NumberOfStudyRelatedInstances.
const INCLUDE_FIELDS = ["00081030", "00080061", "00201208"];

const TAG = {
  patientName: "00100010",
  patientID: "00100020",
  studyDate: "00080020",
  studyDescription: "00081030",
  modalities: "00080061",
  instances: "00201208",
  studyUID: "0020000D",
  seriesUID: "0020000E",
  sopUID: "00080018",
};

const $ = (selector) => document.querySelector(selector);

class BlockedError extends Error {}

function values(item, tag) {
  const attribute = item[tag];
  return attribute && Array.isArray(attribute.Value) ? attribute.Value : [];
}

function text(item, tag) {
  return values(item, tag)
    .map((v) => (typeof v === "object" && v !== null ? v.Alphabetic ?? "" : String(v)))
    .join(", ");
}

function personName(item, tag) {
  // PN components are separated by "^" (PS3.5 §6.2.1); show them with spaces.
  return text(item, tag).replaceAll("^", " ").trim();
}

function date(item, tag) {
  const da = text(item, tag);
  return /^\d{8}$/.test(da) ? `${da.slice(0, 4)}-${da.slice(4, 6)}-${da.slice(6)}` : da;
}

function setState(element, state, message) {
  element.dataset.state = state;
  element.textContent = message;
}

function logRequest(path, outcome) {
  const line = document.createElement("li");
  line.textContent = `GET ${root}${path} → ${outcome}`;
  $("#log").append(line);
}

function blockedMessage(path, error) {
  return (
    `The browser did not hand over the answer to GET ${root}${path} (${error.message}).\n` +
    "Either dicomhub is not running there, or its [cors] table does not allow " +
    `this page's origin, ${location.origin}: list it in origins, and any request ` +
    "header the page sends (Authorization) in headers. The browser console names " +
    "the reason."
  );
}

// A cross-origin GET. A TypeError from fetch means the browser withheld the
// response: a network failure or a failed CORS check (Fetch standard, "CORS
// check").
async function dicomweb(path, accept) {
  let response;
  try {
    const headers = { Accept: accept };
    if (token) {
      headers.Authorization = `Bearer ${token}`;
    }
    response = await fetch(root + path, { headers });
  } catch (error) {
    logRequest(path, `blocked (${error.message})`);
    throw new BlockedError(blockedMessage(path, error));
  }
  logRequest(path, `${response.status} ${response.headers.get("Content-Type") ?? ""}`);
  if (!response.ok) {
    const detail = (await response.text()).slice(0, 300);
    throw new Error(`GET ${root}${path} answered ${response.status}: ${detail}`);
  }
  return response;
}

async function searchJSON(path) {
  const response = await dicomweb(path, "application/dicom+json");
  // No match may be 204 No Content (PS3.18 §8.3.4.4.1) or an empty array.
  return response.status === 204 ? [] : response.json();
}

function studyRow(study) {
  const row = document.createElement("tr");
  const uid = text(study, TAG.studyUID);
  row.dataset.studyUid = uid;
  const cells = [
    personName(study, TAG.patientName),
    text(study, TAG.patientID),
    date(study, TAG.studyDate),
    text(study, TAG.studyDescription),
    text(study, TAG.modalities),
    text(study, TAG.instances),
  ];
  for (const value of cells) {
    const cell = document.createElement("td");
    cell.textContent = value;
    row.append(cell);
  }
  const action = document.createElement("td");
  const button = document.createElement("button");
  button.type = "button";
  button.textContent = "Show";
  button.addEventListener("click", () => showStudy(uid));
  action.append(button);
  row.append(action);
  return row;
}

async function listStudies() {
  const status = $("#status");
  const query = new URLSearchParams({
    limit: "101",
    offset: "0",
    includefield: INCLUDE_FIELDS.join(","),
  });
  try {
    const studies = await searchJSON(`/studies?${query}`);
    $("#studies tbody").replaceChildren(...studies.map(studyRow));
    setState(status, "ready", `${studies.length} studies found.`);
    return studies;
  } catch (error) {
    setState(status, "failed", error.message);
    return [];
  }
}

let shownImageURL = null;

async function showStudy(studyUID) {
  const status = $("#image-status");
  const image = $("#image");
  setState(status, "loading", "Loading an image…");
  for (const row of document.querySelectorAll("#studies tbody tr")) {
    row.classList.toggle("selected", row.dataset.studyUid === studyUID);
  }

  try {
    // Any one instance of the study (PS3.18 §10.6.1: /studies/{study}/instances).
    const found = await searchJSON(`/studies/${studyUID}/instances?limit=1`);
    if (found.length === 0) {
      throw new Error("the study has no instances");
    }
    const series = text(found[0], TAG.seriesUID);
    const instance = text(found[0], TAG.sopUID);
    const path = `/studies/${studyUID}/series/${series}/instances/${instance}/rendered`;

    // fetch, not <img src>: an image element loads cross-origin pictures without
    // asking CORS, and this page is here to show that the server allows it.
    const response = await dicomweb(path, "image/jpeg");
    const blob = await response.blob();
    if (shownImageURL) {
      URL.revokeObjectURL(shownImageURL);
    }
    shownImageURL = URL.createObjectURL(blob);
    image.src = shownImageURL;
    await image.decode();
    image.alt = `rendered instance ${instance}`;
    image.hidden = false;
    image.dataset.studyUid = studyUID;
    $("#image-caption").textContent =
      `${image.naturalWidth}×${image.naturalHeight}, ${blob.type}, ${blob.size} bytes`;
    setState(status, "ready", `Instance ${instance}`);
  } catch (error) {
    image.hidden = true;
    setState(status, "failed", error.message);
  }
}

async function start() {
  $("#page-origin").textContent = location.origin;
  $("#root").textContent = root;
  const studies = await listStudies();
  if (studies.length > 0) {
    await showStudy(text(studies[0], TAG.studyUID));
  }
}

start();

// Calls every request-making method of the JavaScript dicomweb-client (the
// package OHIF uses) against dicomhub on another origin, one call at a time,
// and records what came back in window.results[name]:
//   { method, ok, status, requests: [{method, url, headers, status}], ...facts }
// or, when the call was refused, { ok: false, error, status, body }. The page
// only reports facts (sizes, counts, UIDs, SHA-256 of parts, magic numbers);
// tests/test_dicomweb_client_js.py knows the expected values and asserts them.
'use strict';

window.results = {};
window.done = false;

const root = new URLSearchParams(location.search).get('root');
const { api } = window.DICOMwebClient;

// Every request the client makes passes this hook (its `requestHooks` option),
// so each result lists the requests behind it: method, URL, request headers,
// and the status once the call settled.
const requests = [];
function recordRequest(request, metadata) {
  requests.push({
    method: metadata.method.toUpperCase(),
    url: metadata.url,
    headers: metadata.headers,
    xhr: request,
  });
  return request;
}

const client = new api.DICOMwebClient({
  url: root,
  verbose: false,
  requestHooks: [recordRequest],
});

// singlepart "bulkdata": retrieveBulkData sends our own headers (here a
// single-part Accept and a Range, PS3.18 §8.7.3.5.2) instead of multipart.
const singlepartClient = new api.DICOMwebClient({
  url: root,
  verbose: false,
  singlepart: 'bulkdata',
  requestHooks: [recordRequest],
});

// Tags as DICOM JSON keys (PS3.18 F.2.1).
const TAG = {
  StudyInstanceUID: '0020000D',
  SeriesInstanceUID: '0020000E',
  SOPInstanceUID: '00080018',
  Modality: '00080060',
  NumberOfFrames: '00280008',
  AvailableTransferSyntaxUID: '00083002',
  PixelData: '7FE00010',
  FailedSOPSequence: '00081198',
  ReferencedSOPSequence: '00081199',
  FailureReason: '00081197',
};

function values(items, tag) {
  return items.map(item => (item[tag] && item[tag].Value ? item[tag].Value[0] : null));
}

function asList(answer) {
  return Array.isArray(answer) ? answer : [answer];
}

function bytes(buffer) {
  return new Uint8Array(buffer instanceof ArrayBuffer ? buffer : buffer.buffer);
}

function hex(buffer, count) {
  return Array.from(bytes(buffer).slice(0, count))
    .map(b => b.toString(16).padStart(2, '0'))
    .join('');
}

// PS3.10 §7.1: 128-byte preamble, then "DICM".
function isPart10(buffer) {
  return new TextDecoder('latin1').decode(bytes(buffer).slice(128, 132)) === 'DICM';
}

async function sha256(buffer) {
  return hex(await crypto.subtle.digest('SHA-256', bytes(buffer)), 32);
}

function magic(buffer) {
  const start = hex(buffer, 8);
  if (start.startsWith('ffd8ff')) return 'jpeg';
  if (start.startsWith('89504e47')) return 'png';
  if (start.startsWith('ff4fff51')) return 'j2k';
  if (start.startsWith('0000000c6a502020')) return 'jp2';
  return start;
}

async function imageSize(buffer) {
  const bitmap = await createImageBitmap(new Blob([buffer]));
  return [bitmap.width, bitmap.height];
}

// Facts about the parts of a multipart answer (or the one body of a single one).
async function describeParts(answer) {
  const parts = asList(answer);
  return {
    count: parts.length,
    sizes: parts.map(part => part.byteLength),
    sha256: await Promise.all(parts.map(sha256)),
    magic: parts.map(magic),
    part10: parts.map(isPart10),
    contentType: parts[0] ? parts[0].contentType || null : null,
    transferSyntaxUID: parts[0] ? parts[0].transferSyntaxUID || null : null,
  };
}

async function describeImage(answer) {
  const image = asList(answer)[0];
  return { size: image.byteLength, magic: magic(image), dimensions: await imageSize(image) };
}

function errorBody(error) {
  const body = error.response;
  if (body instanceof ArrayBuffer) return new TextDecoder().decode(body);
  if (body === null || body === undefined) return null;
  return typeof body === 'string' ? body : JSON.stringify(body);
}

async function run(name, method, call) {
  const start = requests.length;
  let entry;
  try {
    entry = { method, ok: true, ...(await call()) };
  } catch (error) {
    entry = {
      method,
      ok: false,
      error: String(error && error.message ? error.message : error),
      status: error && error.status !== undefined ? error.status : null,
      body: error ? errorBody(error) : null,
    };
  }
  entry.requests = requests.slice(start).map(({ xhr, ...request }) => ({
    ...request,
    status: xhr.status,
  }));
  if (entry.status === undefined && entry.requests.length) {
    entry.status = entry.requests[entry.requests.length - 1].status;
  }
  window.results[name] = entry;
}

async function fetchFile(name) {
  const response = await fetch(name);
  if (!response.ok) throw new Error(`${name}: ${response.status}`);
  return response.arrayBuffer();
}

function storeFacts(answer) {
  const body = typeof answer === 'string' ? JSON.parse(answer) : answer;
  const referenced = (body[TAG.ReferencedSOPSequence] || {}).Value || [];
  const failed = (body[TAG.FailedSOPSequence] || {}).Value || [];
  return {
    referenced: values(referenced, '00081155'),
    failed: values(failed, '00081155'),
  };
}

function uids(instance) {
  return {
    studyInstanceUID: instance.study,
    seriesInstanceUID: instance.series,
    sopInstanceUID: instance.sop,
  };
}

async function main() {
  const manifest = await (await fetch('instances.json')).json();
  const { ct, dose, mr, patientID } = manifest;
  const files = {};
  for (const instance of [ct, dose, mr]) {
    files[instance.file] = await fetchFile(instance.file);
  }

  window.clientMethods = Object.getOwnPropertyNames(api.DICOMwebClient.prototype)
    .filter(name => name !== 'constructor' && !name.startsWith('_'));

  // STOW-RS (PS3.18 §10.5): two instances into the CT's study, one without a study.
  await run('store CT and RT Dose into their study', 'storeInstances', async () =>
    storeFacts(await client.storeInstances({
      datasets: [files[ct.file], files[dose.file]],
      studyInstanceUID: ct.study,
    })));
  await run('store MR (JPEG 2000)', 'storeInstances', async () =>
    storeFacts(await client.storeInstances({ datasets: [files[mr.file]] })));
  await run('store CT again (refused: 409)', 'storeInstances', async () =>
    storeFacts(await client.storeInstances({ datasets: [files[ct.file]] })));

  // QIDO-RS (PS3.18 §10.6), with paging by limit and offset (§8.3.4.4).
  const studies = queryParams => async () => {
    const found = await client.searchForStudies({ queryParams });
    return { count: found.length, uids: values(found, TAG.StudyInstanceUID) };
  };
  await run('studies of the patient', 'searchForStudies', studies({ PatientID: patientID }));
  for (const offset of [0, 1, 2]) {
    await run(`studies of the patient, limit 1 offset ${offset}`, 'searchForStudies',
      studies({ PatientID: patientID, limit: 1, offset }));
  }
  await run('series of the CT study', 'searchForSeries', async () => {
    const found = await client.searchForSeries({ studyInstanceUID: ct.study });
    return { count: found.length, modalities: values(found, TAG.Modality).sort() };
  });
  await run('CT series of the patient', 'searchForSeries', async () => {
    const found = await client.searchForSeries({
      queryParams: { PatientID: patientID, Modality: 'CT' },
    });
    return { count: found.length, uids: values(found, TAG.SeriesInstanceUID) };
  });
  await run('instances of the CT series', 'searchForInstances', async () => {
    const found = await client.searchForInstances({
      studyInstanceUID: ct.study, seriesInstanceUID: ct.series,
    });
    return { count: found.length, uids: values(found, TAG.SOPInstanceUID) };
  });
  await run('instances of the CT study', 'searchForInstances', async () => {
    const found = await client.searchForInstances({ studyInstanceUID: ct.study });
    return { count: found.length, uids: values(found, TAG.SOPInstanceUID).sort() };
  });
  await run('instances of the patient', 'searchForInstances', async () => {
    const found = await client.searchForInstances({
      queryParams: { PatientID: patientID, includefield: 'NumberOfFrames' },
    });
    return { count: found.length, uids: values(found, TAG.SOPInstanceUID).sort() };
  });

  // WADO-RS metadata (PS3.18 §10.4, Annex F).
  await run('metadata of the CT study', 'retrieveStudyMetadata', async () => {
    const found = await client.retrieveStudyMetadata({ studyInstanceUID: ct.study });
    return { count: found.length, uids: values(found, TAG.SOPInstanceUID).sort() };
  });
  await run('metadata of an unknown study (404)', 'retrieveStudyMetadata', async () => {
    const found = await client.retrieveStudyMetadata({ studyInstanceUID: '2.25.1' });
    return { count: found.length };
  });
  await run('metadata of the RT Dose series', 'retrieveSeriesMetadata', async () => {
    const found = await client.retrieveSeriesMetadata({
      studyInstanceUID: dose.study, seriesInstanceUID: dose.series,
    });
    return { count: found.length, frames: values(found, TAG.NumberOfFrames) };
  });
  const bulkDataURIs = {};
  for (const instance of [ct, mr]) {
    await run(`metadata of the ${instance.name} instance`, 'retrieveInstanceMetadata',
      async () => {
        const found = await client.retrieveInstanceMetadata(uids(instance));
        const pixelData = found[0][TAG.PixelData] || {};
        bulkDataURIs[instance.name] = pixelData.BulkDataURI;
        return {
          count: found.length,
          uids: values(found, TAG.SOPInstanceUID),
          transferSyntaxes: values(found, TAG.AvailableTransferSyntaxUID),
          pixelDataBulkDataURI: pixelData.BulkDataURI || null,
        };
      });
  }

  // WADO-RS instances, series, study (PS3.18 §10.4.1.1.1): the default asks for
  // multipart/related; type="application/dicom"; transfer-syntax=* gives the
  // bytes as stored (§8.7.3.5.2).
  const asStored = [{ mediaType: 'application/dicom', transferSyntaxUID: '*' }];
  for (const instance of [ct, mr]) {
    await run(`${instance.name} instance`, 'retrieveInstance', async () => {
      const part = await client.retrieveInstance(uids(instance));
      return { ...(await describeParts(part)) };
    });
    // Client bug (0.11.3): retrieveInstance, retrieveSeries and retrieveStudy
    // compare _getCommonMediaType's "application/" with "application/dicom",
    // so any mediaTypes throws "Media type application/ is not supported".
    // The page calls the helper retrieveInstance would have called.
    await run(`${instance.name} instance as stored`, 'retrieveInstance', async () => {
      const url = `${root}/studies/${instance.study}/series/${instance.series}` +
        `/instances/${instance.sop}`;
      const part = (await client._httpGetMultipartApplicationDicom(url, asStored))[0];
      const sent = bytes(files[instance.file]);
      const got = bytes(part);
      return {
        ...(await describeParts(part)),
        identical: sent.length === got.length && sent.every((b, i) => b === got[i]),
      };
    });
  }
  await run('RT Dose series', 'retrieveSeries', async () =>
    describeParts(await client.retrieveSeries({
      studyInstanceUID: dose.study, seriesInstanceUID: dose.series,
    })));
  await run('CT study', 'retrieveStudy', async () =>
    describeParts(await client.retrieveStudy({ studyInstanceUID: ct.study })));

  // Frames (PS3.18 §10.4.1.1.3): octet-stream by default, the stored bytes with
  // transfer-syntax=*, or the compressed type of the stored syntax.
  const frames = (instance, frameNumbers, mediaTypes) => async () =>
    describeParts(await client.retrieveInstanceFrames({
      ...uids(instance), frameNumbers, mediaTypes,
    }));
  await run('CT frame 1', 'retrieveInstanceFrames', frames(ct, '1'));
  await run('RT Dose frames 1,2,15', 'retrieveInstanceFrames', frames(dose, [1, 2, 15]));
  await run('CT frame 1, octet-stream as stored', 'retrieveInstanceFrames',
    frames(ct, '1', [{ mediaType: 'application/octet-stream', transferSyntaxUID: '*' }]));
  await run('MR frame 1, decoded', 'retrieveInstanceFrames', frames(mr, '1'));
  await run('MR frame 1 as image/jp2', 'retrieveInstanceFrames', frames(mr, '1',
    [{ mediaType: 'image/jp2', transferSyntaxUID: '1.2.840.10008.1.2.4.90' }]));
  await run('CT frame 1 as image/jp2 (transcoded)', 'retrieveInstanceFrames',
    frames(ct, '1', [{ mediaType: 'image/jp2' }]));
  await run('CT frame 1 as JPEG Baseline (16-bit: 406)', 'retrieveInstanceFrames',
    frames(ct, '1',
      [{ mediaType: 'image/jpeg', transferSyntaxUID: '1.2.840.10008.1.2.4.50' }]));

  // Rendered and thumbnail resources (PS3.18 §10.4.1.1.4, §10.4.1.1.5).
  const image = call => async () => describeImage(await call());
  await run('CT rendered', 'retrieveInstanceRendered',
    image(() => client.retrieveInstanceRendered(uids(ct))));
  await run('CT rendered as PNG, viewport 64,64', 'retrieveInstanceRendered',
    image(() => client.retrieveInstanceRendered({
      ...uids(ct), mediaTypes: [{ mediaType: 'image/png' }], queryParams: { viewport: '64,64' },
    })));
  await run('RT Dose frame 2 rendered as PNG', 'retrieveInstanceFramesRendered',
    image(() => client.retrieveInstanceFramesRendered({
      ...uids(dose), frameNumbers: '2', mediaTypes: [{ mediaType: 'image/png' }],
    })));
  // Without mediaTypes the client sets responseType "arraybuffer" only when
  // queryParams are given (else the image arrives as text): pass one.
  await run('RT Dose frame 3 rendered, quality 90', 'retrieveInstanceFramesRendered',
    image(() => client.retrieveInstanceFramesRendered({
      ...uids(dose), frameNumbers: '3', queryParams: { quality: 90 },
    })));
  await run('CT thumbnail', 'retrieveInstanceThumbnail',
    image(() => client.retrieveInstanceThumbnail(uids(ct))));
  await run('MR thumbnail as PNG', 'retrieveInstanceThumbnail',
    image(() => client.retrieveInstanceThumbnail({
      ...uids(mr), mediaTypes: [{ mediaType: 'image/png' }],
    })));
  await run('RT Dose frame 1 thumbnail', 'retrieveInstanceFramesThumbnail',
    image(() => client.retrieveInstanceFramesThumbnail({ ...uids(dose), frameNumbers: '1' })));

  // Bulk data (PS3.18 §10.4.1.1.2) at the BulkDataURIs the metadata handed out.
  for (const instance of [ct, mr]) {
    await run(`${instance.name} Pixel Data bulk data`, 'retrieveBulkData', async () =>
      describeParts(await client.retrieveBulkData({
        BulkDataURI: bulkDataURIs[instance.name],
      })));
  }
  await run('CT Pixel Data bytes 0-99, single part', 'retrieveBulkData', async () =>
    describeParts(await singlepartClient.retrieveBulkData({
      BulkDataURI: bulkDataURIs.CT,
      headers: { Accept: 'application/octet-stream', Range: 'bytes=0-99' },
    })));

  // WADO-URI (PS3.18 §9): the client only builds the URL; no request is made.
  window.wadoURIUrl = client.buildInstanceWadoURIUrl(uids(ct));
}

main()
  .catch(error => {
    window.results['page'] = { method: null, ok: false, error: String(error), requests: [] };
  })
  .finally(() => {
    document.querySelector('#status').dataset.state = 'done';
    window.done = true;
  });

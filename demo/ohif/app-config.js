/**
 * OHIF Viewer configuration for dicomhub (served at /app-config.js in place of
 * the one in @ohif/app's dist/, by demo/ohif/server.py).
 *
 * One data source: dicomhub's DICOMweb root, on another origin than the viewer,
 * so every search and retrieve is a cross-origin request that dicomhub's [cors]
 * table must allow. The server that serves this file puts the root into
 * window.dicomhubRoot first; opened on its own, the file uses the default of
 * `dicomhub serve` (http://127.0.0.1:8080/v2).
 */
const dicomwebRoot = window.dicomhubRoot || 'http://127.0.0.1:8080/v2';

window.config = {
  name: 'dicomhub',
  // The viewer is served at the root of its origin; unknown paths fall back
  // to index.html (demo/ohif/server.py), where OHIF's router takes over.
  routerBasename: '/',
  // OHIF's own extensions and modes (Basic Viewer among them) are built into
  // dist/; none are added.
  extensions: [],
  modes: [],
  customizationService: {},
  showStudyList: true,
  // Two cores are common on the machines this runs on; OHIF decodes in workers.
  maxNumberOfWebWorkers: 2,
  showLoadingIndicator: true,
  showErrorDetails: 'always',
  defaultDataSourceName: 'dicomhub',
  dataSources: [
    {
      namespace: '@ohif/extension-default.dataSourcesModule.dicomweb',
      sourceName: 'dicomhub',
      configuration: {
        friendlyName: 'dicomhub',
        name: 'dicomhub',
        // dicomhub answers QIDO-RS, WADO-RS and STOW-RS under one root
        // (PS3.18 §10.6, §10.4, §10.5). It has no WADO-URI service; OHIF uses
        // wadoUriRoot only with imageRendering 'wadouri', which is not used here.
        qidoRoot: dicomwebRoot,
        wadoRoot: dicomwebRoot,
        wadoUriRoot: dicomwebRoot,
        // QIDO-RS includefield (PS3.18 §8.3.4.3), wildcard matching
        // (PS3.4 C.2.2.2.4) and fuzzymatching of person names (PS3.18 §8.3.4.2,
        // by word prefix) all work.
        qidoSupportsIncludeField: true,
        supportsWildcard: true,
        supportsFuzzyMatching: true,
        // Pixels through WADO-RS frames (PS3.18 §10.4), decoded in the
        // browser; thumbnails are drawn the same way.
        imageRendering: 'wadors',
        thumbnailRendering: 'wadors',
        // Series metadata is fetched when a series is shown, not all at once.
        enableStudyLazyLoad: true,
        staticWado: false,
        // Large values in the metadata come as BulkDataURIs (PS3.18 F.2.6),
        // fetched when needed.
        bulkDataURI: {
          enabled: true,
        },
        // Keep the quotes in Accept: multipart/related; type="application/octet-stream",
        // as the standard writes it (PS3.18 §8.7.3). Their bytes are
        // CORS-unsafe, so every frame request is preflighted with `accept` in
        // Access-Control-Request-Headers, which dicomhub always allows
        // (docs/cors.md §2, D6).
        omitQuotationForMultipartRequest: false,
      },
    },
  ],
  httpErrorHandler: error => {
    console.warn('dicomhub request failed with status', error.status);
  },
};

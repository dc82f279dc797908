"""``dicomhub cors check``: would a browser on a given origin be let through?

The answer comes from one of two places:

- the settings ``dicomhub serve`` would use (a TOML file and the DICOMHUB_*
  environment), decided by the same `CorsPlan` the CORS layer runs; or
- a running server (``--url``), asked with a real preflight that is built as a
  browser builds it (Fetch, "CORS-preflight fetch"): ``Origin``, ACRM and ACRH
  with lower-case names, sorted, without duplicates, joined by ``,``. For GET
  and HEAD the request itself is sent too; POST, PUT and DELETE never are,
  since they could change data.

Either way the answer's headers then go through the checks a browser makes
(Fetch, "CORS check" and the preflight's method and header checks), so a
proxy in front that strips or duplicates ``Access-Control-*`` headers is caught
as well. The verdict is one line; explanations follow, naming the setting to
change and the protocol reason (docs/cors.md §2, §3 and D1-D17).

Known limits: with ``--url`` the command carries no cookies, so a server that
answers differently to a signed-in browser is judged as for an anonymous one;
Private Network Access preflights (D14) are not simulated; near-misses of a
refused origin are named against the server's list only when it answers
``GET /admin/cors``.

The package's modules: `request` (the browser's request), `settings` and
`server` (where the answers come from), `browser` (the browser's checks),
`findings` (a failed check in words), `nearmiss` (an origin written a little
differently), `verbose` (what --verbose shows) and `answer` (answers,
findings and the verdict).
"""

from .answer import Verdict
from .nearmiss import near_miss
from .request import BrowserRequest, CheckUsageError, browser_request
from .server import check_server
from .settings import check_settings

__all__ = [
    "BrowserRequest",
    "CheckUsageError",
    "Verdict",
    "browser_request",
    "check_server",
    "check_settings",
    "near_miss",
]

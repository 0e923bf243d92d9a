/** The dashboard page served at GET /. */
export const DASHBOARD_HTML = '<!doctype html><title>iocpnet</title><p>iocpnet metrics: <a href="/metrics">/metrics</a></p>\n';

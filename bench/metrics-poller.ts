/**
 * What an open dashboard and a Prometheus scraper ask of a server's metrics
 * port: GET /stats.json and GET /metrics, once a second each, for
 * `bench --metrics-port`. A port that does not answer (the server between
 * runs) is asked again a second later.
 */
export function pollMetrics(port: number, host = '127.0.0.1'): { stop(): void; requests(): number } {
  let answered = 0;
  let stopped = false;
  const ask = async (path: string): Promise<void> => {
    try {
      const res = await fetch(`http://${host}:${port}${path}`);
      await res.text();
      if (res.ok) answered++;
    } catch {
      // Not listening yet, or already closed.
    }
  };
  const timer = setInterval(() => {
    if (stopped) return;
    void ask('/stats.json');
    void ask('/metrics');
  }, 1000);
  timer.unref();
  return {
    stop() {
      stopped = true;
      clearInterval(timer);
    },
    requests: () => answered,
  };
}
